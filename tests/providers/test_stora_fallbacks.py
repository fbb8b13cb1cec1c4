"""Stora's ASSUMED reads from the vendor's side: the sandbox answers the other documented way
(``Sandbox.set_variants``) and the adapter keeps working with the fallback named in its register.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dealdesk.providers.assumptions import FELL_BACK, HELD, UNCHECKED
from dealdesk.providers.base import DealQuery, NotFound
from dealdesk.providers.stora import StoraAdapter


@pytest.fixture
def adapter(stora_info, sandbox, settings) -> StoraAdapter:
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    return StoraAdapter(stora_info)


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["stora"]


def states(adapter: StoraAdapter) -> dict[str, tuple[str, str]]:
    """What the admin would read, from a fresh adapter (the record outlives one instance)."""
    fresh = StoraAdapter(adapter.connection)
    return {s.assumption.id: (s.state, s.detail) for s in fresh.assumption_report()}


def assigned_deal(simulator) -> dict:
    return next(d for d in simulator.deals.values() if d["assignee"] and d["status"] == "open")


def test_every_assumption_starts_unchecked_and_holds_once_used(adapter, sandbox):
    assert {state for state, _ in states(adapter).values()} == {UNCHECKED}

    ref = adapter.reference_data()
    adapter.list_deals(DealQuery(status="open"), ref=ref, cursor=None, limit=5)
    adapter.get_deal(next(iter(sandbox.simulators["stora"].deals)), ref=ref)

    assert {key: state for key, (state, _) in states(adapter).items()} == {
        "S-A1": HELD,
        "S-A2": HELD,
        "S-A3": HELD,
        "S-A9": HELD,
        "S-A15": HELD,
    }


def test_staff_404_keeps_the_source_working_with_names_from_expand(adapter, sandbox, simulator):
    sandbox.set_variants("stora", ["staff_404"])
    raw = assigned_deal(simulator)
    staff_name = simulator.staff[raw["assignee"]["id"]]["name"]

    ref = adapter.reference_data()  # no longer fails the whole reference fetch
    page = adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=100)
    deal = adapter.get_deal(raw["id"], ref=ref)

    assert ref.staff == () and ref.pipelines[0].stages
    listed = next(d for d in page.deals if d.id == raw["id"])
    assert listed.owner.name == staff_name  # the list asked for expand=assignee instead
    assert deal.owner.name == staff_name
    assert "assignee" not in [f.name for f in adapter.editable_fields(deal, ref=ref)]
    assert any("Assignee" in note for note in adapter.actions(deal, ref=ref).notes)
    assert states(adapter)["S-A9"] == (FELL_BACK, "404")


def test_staff_404_is_asked_once_then_remembered(adapter, sandbox):
    sandbox.set_variants("stora", ["staff_404"])
    adapter.reference_data()
    sandbox.clear_log()

    StoraAdapter(adapter.connection).reference_data()

    assert all(r.path != "/2025-09/staff" for r in sandbox.requests("stora"))


def test_refused_expand_is_retried_once_without_it_and_remembered(adapter, sandbox, simulator):
    sandbox.set_variants("stora", ["expand_422"])
    raw = assigned_deal(simulator)
    ref = adapter.reference_data()
    sandbox.clear_log()

    deal = adapter.get_deal(raw["id"], ref=ref)
    again = StoraAdapter(adapter.connection).get_deal(raw["id"], ref=ref)

    first, retry, later = sandbox.requests("stora")
    assert "expand" in first.query and first.status == 422
    assert "expand" not in retry.query and retry.status == 200
    assert "expand" not in later.query  # remembered for the connection
    assert deal.owner.name == simulator.staff[raw["assignee"]["id"]]["name"]  # reference data
    assert deal.contact.name == again.contact.name != raw["contact"]["id"]
    assert states(adapter)["S-A3"][0] == FELL_BACK


def test_refused_filters_are_dropped_and_done_locally(adapter, sandbox, simulator):
    sandbox.set_variants("stora", ["filters_422"])
    ref = adapter.reference_data()
    sandbox.clear_log()

    page = adapter.list_deals(DealQuery(status="won"), ref=ref, cursor=None, limit=100)

    refused, retried = sandbox.requests("stora")
    assert refused.status == 422 and refused.query["status"] == ["won"]
    assert "status" not in retried.query and retried.status == 200
    # Without the filter the list holds every deal; the service re-checks each row (listing.py).
    assert len(page.deals) == min(100, len(simulator.deals))
    state, detail = states(adapter)["S-A2"]
    assert state == FELL_BACK and "status" in detail


def test_refused_sort_is_done_locally_over_every_deal(adapter, sandbox, simulator):
    sandbox.set_variants("stora", ["sort_422"])
    ref = adapter.reference_data()

    oldest_first = adapter.list_deals(DealQuery(sort="updated_at"), ref=ref, cursor=None, limit=5)
    following = adapter.list_deals(
        DealQuery(sort="updated_at"), ref=ref, cursor=oldest_first.next_cursor, limit=5
    )

    expected = sorted(simulator.deals.values(), key=lambda d: (d["updated_at"], d["id"]))
    assert [d.id for d in oldest_first.deals + following.deals] == [d["id"] for d in expected[:10]]
    assert oldest_first.total == len(simulator.deals)
    listed = [r for r in sandbox.requests("stora") if r.path == "/2025-09/deals"]
    assert all("sort_by" not in r.query for r in listed if r.status == 200)
    assert states(adapter)["S-A1"][0] == FELL_BACK


def test_a_real_422_on_the_list_is_not_mistaken_for_a_refused_assumption(adapter, sandbox):
    ref = adapter.reference_data()
    sandbox.fail_next(
        "stora",
        1,
        422,
        {"error": {"code": "invalid_content", "message": "Odd.", "details": []}},
    )

    with pytest.raises(Exception):  # noqa: B017 - any ProviderError; the point is no fallback
        adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=5)

    assert states(adapter)["S-A1"][0] != FELL_BACK
    assert states(adapter)["S-A2"][0] != FELL_BACK


@pytest.mark.parametrize("deal_id", ["..", ".", "dl_abc", "deal_", "deal_../x", ""])
def test_an_id_that_is_not_stora_is_not_found_and_nothing_is_sent(adapter, sandbox, deal_id):
    ref = adapter.reference_data()
    sandbox.clear_log()

    with pytest.raises(NotFound):
        adapter.get_deal(deal_id, ref=ref)

    assert not adapter.is_deal_id(deal_id)
    assert sandbox.requests("stora") == []


def test_move_in_date_edit_keeps_the_stored_time_of_day(adapter, sandbox, simulator):
    raw = assigned_deal(simulator)
    sandbox.mutate_deal("stora", raw["id"], {"starts_at": "2026-03-01T14:30:00Z"})
    ref = adapter.reference_data()
    deal = adapter.get_deal(raw["id"], ref=ref)

    updated = adapter.update_deal(
        raw["id"],
        {"starts_at": dt.date(2026, 4, 2)},
        ref=ref,
        idempotency_key="ik",
        current=deal,
    )

    assert sandbox.requests("stora")[-1].body == {"starts_at": "2026-04-02T14:30:00Z"}
    assert updated.starts_at == dt.datetime(2026, 4, 2, 14, 30, tzinfo=dt.UTC)
