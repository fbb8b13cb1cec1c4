"""Stale deals: open deals idle past their stage's threshold (default 14 days, per-stage admin
setting) are marked on the list and the board, and the list can show only them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from dealdesk.deals.models import StageSetting
from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.deals.stale import StaleThresholds, stale_thresholds
from dealdesk.providers.base import Deal, Stage

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def a_deal(*, status="open", days_idle=20, stage_id="st_1", slug="stora") -> Deal:
    return Deal(
        connection_slug=slug,
        source_label=slug,
        provider=slug,
        id="d1",
        name="A deal",
        status=status,
        stage=Stage(stage_id, "Stage"),
        updated_at=NOW - dt.timedelta(days=days_idle),
    )


def test_an_open_deal_idle_longer_than_14_days_is_stale_by_default():
    thresholds = StaleThresholds()
    assert thresholds.idle_days(a_deal(days_idle=20), NOW) == 20
    assert thresholds.idle_days(a_deal(days_idle=14), NOW) is None
    assert not thresholds.is_stale(a_deal(days_idle=3), NOW)


def test_closed_deals_are_never_stale():
    thresholds = StaleThresholds()
    assert not thresholds.is_stale(a_deal(status="won", days_idle=90), NOW)
    assert not thresholds.is_stale(a_deal(status="lost", days_idle=90), NOW)


def test_a_stage_setting_overrides_the_default_for_that_stage_only():
    StageSetting.objects.create(connection_slug="stora", stage_id="st_1", stale_after_days=30)
    thresholds = stale_thresholds()
    assert not thresholds.is_stale(a_deal(days_idle=20), NOW)
    assert thresholds.is_stale(a_deal(days_idle=20, stage_id="st_2"), NOW)
    assert thresholds.is_stale(a_deal(days_idle=20, slug="nodestash"), NOW)


def test_saving_a_stage_setting_takes_effect_at_once_despite_the_cache():
    assert stale_thresholds().is_stale(a_deal(days_idle=5), NOW) is False
    setting = StageSetting.objects.create(
        connection_slug="stora", stage_id="st_1", stale_after_days=2
    )
    assert stale_thresholds().is_stale(a_deal(days_idle=5), NOW)
    setting.delete()
    assert not stale_thresholds().is_stale(a_deal(days_idle=5), NOW)


def test_the_stale_filter_lists_only_stale_open_deals_of_both_sources(
    connections, sandbox, no_rate_limits
):
    everything = deal_list(filters=DealFilters(), page_size=100).deals
    stale = deal_list(filters=DealFilters(stale=True), page_size=100).deals
    thresholds = stale_thresholds()
    expected = [d.key for d in everything if thresholds.is_stale(d)]
    assert expected, "the demo seed has stale open deals"
    assert [d.key for d in stale] == expected
    assert {d.connection_slug for d in stale} == {"stora", "nodestash"}
    assert all(d.status == "open" for d in stale)


def test_the_stale_filter_reads_open_deals_from_the_store_with_no_upstream_call(
    connections, sandbox
):
    sandbox.clear_log()
    stale = deal_list(filters=DealFilters(source="stora", stale=True), page_size=25).deals
    assert stale and all(d.status == "open" and d.connection_slug == "stora" for d in stale)
    assert sandbox.requests("stora") == [] and sandbox.requests("nodestash") == []


def test_stale_filter_also_works_sorted_by_name(connections, sandbox):
    by_name = deal_list(filters=DealFilters(stale=True, sort="name"), page_size=100).deals
    thresholds = stale_thresholds()
    assert by_name and all(thresholds.is_stale(d) for d in by_name)
    names = [d.name.casefold() for d in by_name]
    assert names == sorted(names)


def test_stale_filter_round_trips_through_the_querystring():
    filters = DealFilters.from_querydict({"stale": "1", "q": "unit"})
    assert filters.stale
    assert filters.to_querystring() == "q=unit&stale=1"


def test_list_marks_stale_rows_with_an_accessible_label(sales_client):
    html = sales_client.get(reverse("deals:list"), {"stale": "1"}).content.decode()
    assert 'id="filter-stale" name="stale" value="1" checked' in html
    assert 'class="stale" role="img" aria-label="Stale: not updated for ' in html
    rows = html.count("<tr data-row>")
    assert rows and html.count('class="stale"') == rows


def test_board_cards_carry_the_stale_marker(sales_client):
    html = sales_client.get(reverse("board:board"), {"pipeline": "stora:stora"}).content.decode()
    assert 'aria-label="Stale: not updated for ' in html


def test_stage_settings_are_in_the_admin(admin_client):
    response = admin_client.get(reverse("admin:deals_stagesetting_changelist"))
    assert response.status_code == 200
