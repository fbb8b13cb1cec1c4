"""The shared transport's rate budget: page views leave a share of every window to writes."""

from __future__ import annotations

import uuid

import pytest

from dealdesk.providers.base import RateLimited
from dealdesk.providers.http import WRITE, RateBudget, read_ceiling, write_priority


@pytest.fixture
def budget(settings) -> RateBudget:
    settings.DEALDESK_CLIENT_RATE_LIMITS = True
    return RateBudget(scope=f"test-budget-{uuid.uuid4()}", limits=[(10, 3600)])


def test_reads_leave_a_fifth_of_each_window_and_at_least_one_save_to_writes():
    assert read_ceiling(60) == 48
    assert read_ceiling(10) == 8
    assert read_ceiling(5) == 3  # a Save is two calls: its re-read and its write
    assert read_ceiling(2) == 1
    assert read_ceiling(1) == 1


def test_a_write_gets_through_when_reads_are_already_refused(budget):
    for _ in range(8):
        budget.spend()
    with pytest.raises(RateLimited):
        budget.spend()
    budget.spend(priority=WRITE)
    budget.spend(priority=WRITE)
    with pytest.raises(RateLimited):
        budget.spend(priority=WRITE)


def test_refused_reads_are_given_back_and_never_eat_the_reserve(budget):
    for _ in range(8):
        budget.spend()
    for _ in range(25):  # a crowd of page views, all refused
        with pytest.raises(RateLimited):
            budget.spend()
    budget.spend(priority=WRITE)
    budget.spend(priority=WRITE)


def test_calls_inside_write_priority_spend_the_reserve(sandbox, stora_info, settings):
    from dealdesk.providers.stora import StoraAdapter

    settings.DEALDESK_CLIENT_RATE_LIMITS = True
    adapter = StoraAdapter(stora_info)
    adapter.budget.limits = [(5, 3600)]
    for _ in range(3):
        adapter.ping()
    with pytest.raises(RateLimited):
        adapter.ping()
    with write_priority():
        adapter.ping()  # a write's conflict re-read is a GET, and still gets through
    assert len(sandbox.requests("stora")) == 4


@pytest.mark.django_db
def test_a_save_lands_while_page_views_are_refused(
    connections, sandbox, sales_user, stora_info, settings
):
    import time

    from dealdesk.deals.services import deal_get, deal_update
    from dealdesk.providers import adapter_for

    settings.DEALDESK_CLIENT_RATE_LIMITS = True
    deal_id = next(d["id"] for d in sandbox.simulators["stora"].deals.values() if d["name"])
    seen = deal_get(connection_slug="stora", deal_id=deal_id).deal  # warms reference data
    time.sleep(2 - time.time() % 1)  # two slot boundaries on: the warm-up no longer counts
    reads = adapter_for(stora_info).budget
    with pytest.raises(RateLimited):
        for _ in range(20):
            reads.spend(connection_label="Stora")  # page views use up their share
    sandbox.clear_log()

    deal_update(
        user=sales_user,
        connection_slug="stora",
        deal_id=deal_id,
        changes={"name": "Saved under load"},
        originals={"name": seen.name},
        seen_updated_at=seen.updated_at.isoformat(),
        idempotency_key="save-under-load",
    )

    assert [r.method for r in sandbox.requests("stora")] == ["GET", "PATCH"]
    assert sandbox.simulators["stora"].deals[deal_id]["name"] == "Saved under load"


def test_the_previous_slot_still_counts_until_it_slides_out(settings):
    """An upstream that counts over a sliding second must never see twice its limit across a
    slot boundary: the previous slot's calls count, weighted by how much of them still overlap."""
    import time

    settings.DEALDESK_CLIENT_RATE_LIMITS = True
    budget = RateBudget(scope=f"test-slide-{uuid.uuid4()}", limits=[(10, 1)])
    time.sleep(1 - time.time() % 1 + 0.9)  # late in a second
    for _ in range(10):
        budget.spend(priority=WRITE)
    time.sleep(1 - time.time() % 1 + 0.05)  # just after the boundary: ~95 % still overlaps
    with pytest.raises(RateLimited):
        budget.spend(priority=WRITE)
