"""Reference data is cached per connection: warm pages cost one upstream call per source."""

from __future__ import annotations

import dataclasses
import time

import pytest
from django.core.cache import cache

from dealdesk.deals.reference import reference_get
from dealdesk.deals.services import DealFilters, deal_get, deal_list
from dealdesk.providers import adapter_for
from dealdesk.providers.base import AuthenticationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Cold and warm reads back to back; the budget is not under test here."""


def paths(sandbox, provider):
    return [(r.method, r.path) for r in sandbox.requests(provider)]


def first_deal(source):
    return deal_list(filters=DealFilters(source=source), page_size=1).deals[0]


def test_a_warm_detail_costs_one_upstream_call(connections, sandbox):
    deal = first_deal("stora")
    sandbox.clear_log()

    detail = deal_get(connection_slug="stora", deal_id=deal.id)

    assert paths(sandbox, "stora") == [("GET", f"/2025-09/deals/{deal.id}")]
    assert detail.deal.id == deal.id
    assert [f.name for f in detail.fields][:1] == ["name"]
    assert detail.actions.can_win
    assert (detail.connection.slug, detail.connection.label) == ("stora", "Stora")


def test_a_cold_detail_fetches_reference_data_once_then_stays_warm(connections, sandbox):
    deal_id = first_deal("nodestash").id
    cache.clear()
    sandbox.clear_log()

    deal_get(connection_slug="nodestash", deal_id=deal_id)
    cold = paths(sandbox, "nodestash")
    sandbox.clear_log()
    deal_get(connection_slug="nodestash", deal_id=deal_id)

    assert ("GET", "/v1/pipelines") in cold and len(cold) > 1
    assert paths(sandbox, "nodestash") == [("GET", f"/v1/deals/{deal_id}")]


def test_reference_data_expires_after_the_ttl(connections, sandbox, settings):
    settings.DEALDESK_REFERENCE_TTL = 1
    deal_id = first_deal("nodestash").id
    time.sleep(1.1)
    sandbox.clear_log()

    deal_get(connection_slug="nodestash", deal_id=deal_id)

    assert ("GET", "/v1/pipelines") in paths(sandbox, "nodestash")


def test_reference_data_is_cached_per_api_key(connections, sandbox, nodestash_info):
    reference_get(adapter=adapter_for(nodestash_info))
    sandbox.clear_log()
    other_key = dataclasses.replace(nodestash_info, api_key="nds_test_other")

    with pytest.raises(AuthenticationFailed):  # the sandbox knows only its own key
        reference_get(adapter=adapter_for(other_key))

    assert paths(sandbox, "nodestash") == [("GET", "/v1/pipelines")]  # not served from cache


def test_an_unknown_stage_refetches_reference_data_once(connections, sandbox):
    deal = first_deal("nodestash")
    simulator = sandbox.simulators["nodestash"]
    pipeline = simulator.pipelines[deal.pipeline.id]
    new_stage = {**pipeline["stages"][0], "id": "ps_addedelsewhere00001", "name": "Added later"}
    new_stage["position"] = len(pipeline["stages"])
    pipeline["stages"].append(new_stage)
    sandbox.mutate_deal("nodestash", deal.id, {"stage_id": new_stage["id"]})
    sandbox.clear_log()

    detail = deal_get(connection_slug="nodestash", deal_id=deal.id)
    again = deal_list(filters=DealFilters(source="nodestash"), page_size=5)

    assert detail.deal.stage.name == "Added later"
    assert detail.deal.status == new_stage["type"]
    assert paths(sandbox, "nodestash").count(("GET", "/v1/pipelines")) == 1
    listed = next(d for d in again.deals if d.id == deal.id)
    assert listed.stage.name == "Added later"
    assert "Added later" in [s.name for s in again.stage_choices]


def test_a_list_page_warms_the_reference_data_for_the_detail(connections, sandbox):
    page = deal_list(filters=DealFilters(), page_size=10)
    sandbox.clear_log()

    for deal in page.deals[:2]:
        deal_get(connection_slug=deal.connection_slug, deal_id=deal.id)

    assert len(sandbox.requests()) == 2
