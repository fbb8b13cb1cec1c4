"""Reference data lives in the store: pages cost no upstream call, the sync refreshes it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from dealdesk.deals.reference import reference_get
from dealdesk.deals.services import DealFilters, deal_get, deal_list
from dealdesk.providers import adapter_for
from dealdesk.sync.engine import sync_run
from dealdesk.sync.models import SyncState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Cold and warm reads back to back; the budget is not under test here."""


def paths(sandbox, provider):
    return [(r.method, r.path) for r in sandbox.requests(provider)]


def first_deal(source):
    return deal_list(filters=DealFilters(source=source), page_size=1).deals[0]


def test_a_detail_page_costs_no_upstream_call(connections, sandbox):
    deal = first_deal("stora")
    sandbox.clear_log()

    detail = deal_get(connection_slug="stora", deal_id=deal.id)

    assert sandbox.requests() == []
    assert detail.deal.id == deal.id
    assert [f.name for f in detail.fields][:1] == ["name"]
    assert detail.actions.can_win
    assert (detail.connection.slug, detail.connection.label) == ("stora", "Stora")


def test_reference_data_comes_from_the_store_after_the_first_sync(connections, sandbox):
    cache.clear()
    sandbox.clear_log()

    ref = reference_get(adapter=adapter_for(connections["nodestash"].info()))

    assert ref.pipelines and ref.names
    assert sandbox.requests() == []


def test_the_sync_reads_reference_data_again_once_it_is_older_than_its_interval(
    connections, sandbox, settings
):
    settings.DEALDESK_SYNC_REFERENCE_INTERVAL = 30
    SyncState.objects.filter(connection=connections["nodestash"]).update(
        reference_synced_at=timezone.now() - dt.timedelta(seconds=31)
    )
    sync_run(connections["stora"])
    sync_run(connections["nodestash"])

    assert ("GET", "/v1/pipelines") in paths(sandbox, "nodestash")
    assert ("GET", "/2025-09/deals/stages") not in paths(sandbox, "stora")


def test_an_unknown_stage_reads_reference_data_again_once(connections, sandbox, resync):
    deal = first_deal("nodestash")
    simulator = sandbox.simulators["nodestash"]
    pipeline = simulator.pipelines[deal.pipeline.id]
    new_stage = {**pipeline["stages"][0], "id": "ps_addedelsewhere00001", "name": "Added later"}
    new_stage["position"] = len(pipeline["stages"])
    pipeline["stages"].append(new_stage)
    sandbox.mutate_deal("nodestash", deal.id, {"stage_id": new_stage["id"]})
    sandbox.clear_log()

    resync()
    detail = deal_get(connection_slug="nodestash", deal_id=deal.id)
    again = deal_list(filters=DealFilters(source="nodestash"), page_size=5)

    assert detail.deal.stage.name == "Added later"
    assert detail.deal.status == new_stage["type"]
    assert paths(sandbox, "nodestash").count(("GET", "/v1/pipelines")) == 1
    listed = next(d for d in again.deals if d.id == deal.id)
    assert listed.stage.name == "Added later"
    assert "Added later" in [s.name for s in again.stage_choices]


@pytest.mark.parametrize("slug", ["stora", "nodestash"])
def test_contacts_places_catalogue_and_links_come_back_from_the_store_as_read(
    connections, sandbox, slug
):
    """What the contact card and the create form need survives the store unchanged."""
    adapter = adapter_for(connections[slug].info())
    live = adapter.reference_data()
    sandbox.clear_log()

    stored = reference_get(adapter=adapter)

    assert sandbox.requests() == []
    assert stored.contacts == live.contacts and stored.contacts
    assert stored.places == live.places and stored.places
    assert stored.catalogue == live.catalogue
    assert stored.link_templates == live.link_templates
    assert stored.names == live.names
