"""nodestash's ASSUMED reads from the vendor's side (``Sandbox.set_variants``), the daily quota
and the per-stage won/lost queries, against the sandbox over real HTTP."""

from __future__ import annotations

import time

import pytest

from dealdesk.providers.assumptions import FELL_BACK, HELD
from dealdesk.providers.base import QUOTA_SPENT, DealQuery, NotFound, RateLimited
from dealdesk.providers.nodestash import NodestashAdapter


@pytest.fixture
def adapter(nodestash_info, sandbox, settings) -> NodestashAdapter:
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    return NodestashAdapter(nodestash_info)


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["nodestash"]


def states(adapter: NodestashAdapter) -> dict[str, tuple[str, str]]:
    fresh = NodestashAdapter(adapter.connection)
    return {s.assumption.id: (s.state, s.detail) for s in fresh.assumption_report()}


def linked_deal(simulator) -> dict:
    return next(d for d in simulator.deals.values() if d.get("contact_id") and d.get("company_id"))


def test_enveloped_include_is_unwrapped(adapter, sandbox, simulator):
    sandbox.set_variants("nodestash", ["include_enveloped"])
    raw = linked_deal(simulator)
    ref = adapter.reference_data()

    deal = adapter.get_deal(raw["id"], ref=ref)

    assert deal.status in ("open", "won", "lost")  # not "unknown"
    assert deal.stage.id == raw["stage_id"] and deal.stage.name != "Unknown stage"
    assert deal.pipeline.id == raw["pipeline_id"] and deal.pipeline.stages
    assert deal.company.name == simulator.companies[raw["company_id"]]["name"]
    actions = adapter.actions(deal, ref=ref)
    assert actions.can_win or actions.can_reopen  # Won/Lost/Reopen are offered again
    assert states(adapter)["N-A1"][0] == FELL_BACK


def test_flat_include_holds(adapter, simulator):
    adapter.get_deal(linked_deal(simulator)["id"], ref=adapter.reference_data())
    assert states(adapter)["N-A1"][0] == HELD


def test_cursor_bound_to_its_page_size_is_followed_with_that_size(adapter, sandbox):
    sandbox.set_variants("nodestash", ["cursor_bound_to_limit"])
    ref = adapter.reference_data()
    first = adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=5)
    sandbox.clear_log()

    second = adapter.list_deals(DealQuery(), ref=ref, cursor=first.next_cursor, limit=7)
    third = adapter.list_deals(DealQuery(), ref=ref, cursor=second.next_cursor, limit=9)

    refused, retried, remembered = sandbox.requests("nodestash")
    assert (refused.status, refused.query["limit"]) == (400, ["7"])
    assert (retried.status, retried.query["limit"]) == (200, ["5"])
    assert (remembered.status, remembered.query["limit"]) == (200, ["5"])
    ids = [d.id for d in first.deals + second.deals + third.deals]
    assert len(ids) == len(set(ids)) == 15
    assert states(adapter)["N-A8"][0] == FELL_BACK


def test_cursor_with_another_limit_holds_on_the_assumed_api(adapter, sandbox):
    ref = adapter.reference_data()
    first = adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=5)
    sandbox.clear_log()

    second = adapter.list_deals(DealQuery(), ref=ref, cursor=first.next_cursor, limit=7)

    assert len(second.deals) == 7
    assert sandbox.requests("nodestash")[0].query["limit"] == ["7"]
    assert states(adapter)["N-A8"][0] == HELD


@pytest.mark.parametrize("status", ["won", "lost"])
def test_won_and_lost_lists_ask_per_stage_and_page_in_order(adapter, sandbox, simulator, status):
    ref = adapter.reference_data()
    stage_ids = {s.id for p in ref.pipelines for s in p.stages_of_type(status)}
    assert len(stage_ids) > 1
    sandbox.clear_log()

    seen, cursor = [], None
    while True:
        page = adapter.list_deals(DealQuery(status=status), ref=ref, cursor=cursor, limit=3)
        seen.extend(page.deals)
        cursor = page.next_cursor
        if cursor is None:
            break

    requests = sandbox.requests("nodestash")
    assert requests and all(r.query.get("stage_id", [""])[0] in stage_ids for r in requests)
    expected = [d for d in simulator.deals.values() if d["stage_id"] in stage_ids]
    assert sorted(d.id for d in seen) == sorted(d["id"] for d in expected)
    stamps = [d.updated_at for d in seen]
    assert stamps == sorted(stamps, reverse=True)


def test_daily_quota_at_zero_stops_calls_until_the_reset(adapter, sandbox, simulator, monkeypatch):
    ref = adapter.reference_data()
    monkeypatch.setattr(simulator, "daily_limit", simulator._daily_used + 1)
    adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=5)  # answers Remaining: 0
    sandbox.clear_log()

    with pytest.raises(RateLimited) as refused:
        NodestashAdapter(adapter.connection).list_deals(DealQuery(), ref=ref, cursor=None, limit=5)

    assert sandbox.requests("nodestash") == []
    assert refused.value.code == QUOTA_SPENT
    assert "daily request quota" in refused.value.message and "UTC" in refused.value.message
    reset = simulator._daily_reset
    assert refused.value.retry_after == pytest.approx(reset - time.time(), abs=5)


@pytest.mark.parametrize("deal_id", ["..", ".", "deal_abc", "dl_", "dl_a/b", "dl_a.b"])
def test_an_id_that_is_not_nodestash_is_not_found_and_nothing_is_sent(adapter, sandbox, deal_id):
    with pytest.raises(NotFound):
        adapter.get_deal(deal_id, ref=adapter.reference_data())
    assert all(not r.path.startswith("/v1/deals") for r in sandbox.requests("nodestash"))
