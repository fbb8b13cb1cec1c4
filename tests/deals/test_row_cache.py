"""The list's rendered rows from the cache (``deals/row_cache.py``): a warm page renders no row,
whatever a row shows (a deal, the viewer's editing rights, the columns, the page's query) makes
a new entry, and an entry expires when an "Updated" time or a stale marker would
read differently."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid

import pytest
from django.test import Client

from dealdesk.deals.row_cache import CACHE_TTL, cache_key, seconds_valid
from dealdesk.deals.services import DealFilters, deal_list, deal_update
from dealdesk.deals.stale import StaleThresholds
from dealdesk.deals.templatetags import deal_rows
from tests.conftest import make_user
from tests.deals.demo_deals import a_deal

pytestmark = pytest.mark.django_db

ROWS = re.compile(r"<tbody>(.*?)</tbody>", re.S)


def rows_of(response) -> str:
    assert response.status_code == 200
    return ROWS.search(response.content.decode()).group(1)


@pytest.fixture
def row_renders(monkeypatch) -> list[str]:
    """Every time the rows partial is rendered (not served from the cache)."""
    renders: list[str] = []
    real = deal_rows.get_template

    def counting(name: str):
        if name.endswith("#deal-rows"):
            renders.append(name)
        return real(name)

    monkeypatch.setattr(deal_rows, "get_template", counting)
    return renders


def test_a_warm_list_serves_its_rows_from_the_cache(sales_client, row_renders):
    first = rows_of(sales_client.get("/deals/"))
    second = rows_of(sales_client.get("/deals/"))

    assert len(row_renders) == 1
    assert second == first and first.count("<tr data-row>") == 25


def test_a_warm_list_reads_neither_its_deals_nor_their_cached_copy(sales_client, monkeypatch):
    """Its rows come rendered and Previous and Next need only the deals' keys: unpickling a
    page of deals cost a warm list page more than any of its queries."""
    from django.core.cache import cache

    sales_client.get("/deals/")
    asked: list[str] = []
    real_get = cache.get

    def get(key, *args, **kwargs):
        asked.append(key)
        return real_get(key, *args, **kwargs)

    monkeypatch.setattr(cache, "get", get)
    page = sales_client.get("/deals/")

    assert rows_of(page).count("<tr data-row>") == 25
    assert any(key.startswith("dealdesk:list-rows:") for key in asked)
    assert any(key.startswith("dealdesk:store:keys:") for key in asked)
    assert not [key for key in asked if key.startswith("dealdesk:store:rows:")]


def test_a_write_shows_in_the_rows_at_once(sales_client, sales_user):
    detail = a_deal("nodestash")
    rows_of(sales_client.get("/deals/"))
    new_name = f"Row cache {uuid.uuid4().hex[:6]}"

    deal_update(
        user=sales_user,
        connection_slug="nodestash",
        deal_id=detail.deal.id,
        changes={"name": new_name},
        seen_updated_at=detail.deal.updated_at.isoformat(),
        idempotency_key=str(uuid.uuid4()),
        originals={"name": detail.deal.name},
    )

    assert new_name in rows_of(sales_client.get("/deals/"))


def test_editors_and_viewers_never_share_rows(sales_client):
    editor_rows = rows_of(sales_client.get("/deals/"))
    viewer = Client()
    viewer.force_login(make_user("viewer2", "Viewers"))

    viewer_rows = rows_of(viewer.get("/deals/"))

    assert 'form="bulk-form"' in editor_rows
    assert 'form="bulk-form"' not in viewer_rows
    assert rows_of(sales_client.get("/deals/")) == editor_rows


def test_the_columns_shown_are_part_of_the_rows(sales_client):
    everything = rows_of(sales_client.get("/deals/"))
    query = DealFilters(cols=("stage", "updated")).to_querystring()

    fewer = rows_of(sales_client.get(f"/deals/?{query}"))

    assert 'data-label="Source"' in everything and 'data-label="Source"' not in fewer
    assert fewer.count("<tr data-row>") == everything.count("<tr data-row>")


def test_every_part_of_what_a_row_shows_is_in_the_key(connections):
    deals = deal_list(filters=DealFilters(), page_size=5).deals
    shown = {"source": True, "stage": True}
    base = {"shown": shown, "bulk": True, "current_query": "", "stale": StaleThresholds()}
    variants = [
        cache_key(deals, **base),
        cache_key(deals[:4], **base),
        cache_key([dataclasses.replace(deals[0], name="Other"), *deals[1:]], **base),
        cache_key(deals, **{**base, "shown": {**shown, "source": False}}),
        cache_key(deals, **{**base, "bulk": False}),
        cache_key(deals, **{**base, "current_query": "status=open"}),
        cache_key(deals, **{**base, "stale": StaleThresholds(default_days=3)}),
        cache_key(deals, **{**base, "stale": None}),
        cache_key(deals, **base, content_token="version-1:[1, 2]"),
        cache_key(deals, **base, content_token="version-2:[1, 2]"),  # the store changed
        cache_key(deals, **base, content_token="version-1:[2, 1]"),  # another order
    ]

    assert len(set(variants)) == len(variants)
    assert cache_key(deals, **base) == variants[0]


def test_an_entry_expires_when_an_updated_time_or_stale_marker_would_change(connections):
    deal = a_deal("stora").deal
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    no_stale = StaleThresholds(default_days=400)

    deal.updated_at = now - dt.timedelta(seconds=20)  # "just now" becomes "1 min ago"
    assert seconds_valid([deal], no_stale, now) == 40
    deal.updated_at = now - dt.timedelta(minutes=5, seconds=50)  # "5 min" becomes "6 min"
    assert seconds_valid([deal], no_stale, now) == 10
    deal.updated_at = now - dt.timedelta(hours=2, minutes=55)  # "2 h" becomes "3 h"
    assert seconds_valid([deal], no_stale, now) == 300
    deal.updated_at = now - dt.timedelta(days=3, hours=1)  # "3 days" for another 23 h
    assert seconds_valid([deal], no_stale, now) == CACHE_TTL
    assert seconds_valid([deal], None, now) == CACHE_TTL
    stale_soon = StaleThresholds(default_days=3)  # stale (and "3 days ago") in 200 s
    deal.updated_at = now - dt.timedelta(days=3) + dt.timedelta(seconds=200)
    assert seconds_valid([deal], stale_soon, now) == 200
    deal.updated_at = now + dt.timedelta(minutes=3)  # a clock ahead of ours: not cached
    assert seconds_valid([deal], no_stale, now) == 0
