"""What a list or board computes over every stored deal (count, totals, a page's ids, a board's
columns) is cached under the store's version token: every way a stored deal changes (a write, a
poll, a full walk, a deletion) gives the store a new token, so a cached figure is never shown
after the store changed; and a warm page reads no stored deal at all."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from dealdesk.board.selectors import board_get
from dealdesk.deals.services import DealFilters, deal_change_stage, deal_list, deal_update
from dealdesk.sync.store import deal_mark_deleted, store_version
from tests.deals.demo_deals import a_deal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Polls and full walks below read every page straight through."""


def store_reads(queries) -> list[str]:
    """The SQL of the captured queries that read the deals table."""
    return [q["sql"] for q in queries if 'FROM "sync_synceddeal"' in q["sql"]]


def aggregate_reads(queries) -> list[str]:
    return [sql for sql in store_reads(queries) if "COUNT(" in sql or "SUM(" in sql]


def test_a_list_counts_and_totals_in_one_pass_then_reads_only_its_page_when_warm(connections):
    filters = DealFilters(status="open")
    with CaptureQueriesContext(db_connection) as cold:
        first = deal_list(filters=filters, page_size=5)
        assert len(first.deals) == 5  # the deals are read when looked at: here
    with CaptureQueriesContext(db_connection) as warm:
        again = deal_list(filters=filters, page_size=5)
        assert len(again.deals) == 5

    assert len(aggregate_reads(cold.captured_queries)) == 1  # count, totals, text values at once
    assert aggregate_reads(warm.captured_queries) == []
    assert store_reads(warm.captured_queries) == []  # its rows too: the store did not change
    assert len(warm.captured_queries) < len(cold.captured_queries)
    assert [d.key for d in again.deals] == [d.key for d in first.deals]
    assert (again.total_count, again.totals, again.text_value_count) == (
        first.total_count,
        first.totals,
        first.text_value_count,
    )


def test_a_warm_page_of_another_filter_or_page_is_read_afresh(connections):
    deal_list(filters=DealFilters(), page_size=5)
    with CaptureQueriesContext(db_connection) as other_page:
        page_two = deal_list(filters=DealFilters(), page=2, page_size=5)
        assert len(page_two.deals) == 5  # read when looked at
    with CaptureQueriesContext(db_connection) as other_filter:
        won = deal_list(filters=DealFilters(status="won"), page_size=5)

    assert aggregate_reads(other_page.captured_queries) == []  # same filters: same figures
    assert len(store_reads(other_page.captured_queries)) == 2  # this page's ids, then its rows
    assert page_two.start_index == 6
    assert len(aggregate_reads(other_filter.captured_queries)) == 1
    assert {d.status for d in won.deals} == {"won"}


def test_a_write_changes_what_the_list_shows_at_once(sales_user, connections):
    detail = a_deal("nodestash")
    new_name = f"Cached {uuid.uuid4().hex[:6]}"
    before = deal_list(filters=DealFilters(q=new_name.casefold()), page_size=5)
    everything = deal_list(filters=DealFilters(), page_size=5)
    version = store_version()

    deal_update(
        user=sales_user,
        connection_slug="nodestash",
        deal_id=detail.deal.id,
        changes={"name": new_name},
        seen_updated_at=detail.deal.updated_at.isoformat(),
        idempotency_key=str(uuid.uuid4()),
        originals={"name": detail.deal.name},
    )

    assert store_version() != version
    after = deal_list(filters=DealFilters(q=new_name.casefold()), page_size=5)
    assert before.total_count == 0
    assert [d.id for d in after.deals] == [detail.deal.id] and after.total_count == 1
    first = deal_list(filters=DealFilters(), page_size=5)
    assert first.deals[0].id == detail.deal.id  # updated just now: the top of the list
    assert first.total_count == everything.total_count


def test_an_upstream_change_shows_after_the_poll_that_reads_it(connections, sandbox, resync):
    detail = a_deal("stora")
    new_name = f"Polled {uuid.uuid4().hex[:6]}"
    filters = DealFilters(q=new_name.casefold())
    assert deal_list(filters=filters, page_size=5).total_count == 0  # cached: none

    sandbox.mutate_deal("stora", detail.deal.id, {"name": new_name})
    assert deal_list(filters=filters, page_size=5).total_count == 0  # not polled yet
    resync()

    listed = deal_list(filters=filters, page_size=5)
    assert [d.id for d in listed.deals] == [detail.deal.id]


def test_a_poll_that_changes_nothing_keeps_the_cache(connections, resync):
    version = store_version()

    resync()

    assert version and store_version() == version


def test_totals_follow_a_changed_value(sales_user, connections):
    detail = a_deal("nodestash", where=lambda d: d.deal.value is not None)
    currency = detail.deal.value.currency
    filters = DealFilters(source="nodestash")
    before = {m.currency: m.amount for m in deal_list(filters=filters).totals}

    deal_update(
        user=sales_user,
        connection_slug="nodestash",
        deal_id=detail.deal.id,
        changes={"value": detail.deal.value.amount + 1000},
        seen_updated_at=detail.deal.updated_at.isoformat(),
        idempotency_key=str(uuid.uuid4()),
        originals={"value": str(detail.deal.value.amount)},
    )

    after = {m.currency: m.amount for m in deal_list(filters=filters).totals}
    assert after[currency] == before[currency] + 1000


def test_a_deleted_deal_leaves_the_cached_count(connections):
    detail = a_deal("stora")
    filters = DealFilters(source="stora")
    before = deal_list(filters=filters).total_count

    deal_mark_deleted(connections["stora"], detail.deal.id)

    after = deal_list(filters=filters)
    assert after.total_count == before - 1
    assert detail.deal.id not in {d.id for d in after.deals}


@pytest.mark.parametrize("gone_count", [1, 30])  # confirmed one by one, or dropped at once
def test_deals_dropped_by_a_full_walk_leave_the_cached_list(
    connections, sandbox, resync, gone_count
):
    sandbox.reset("120")
    sandbox.set_rate_limiting("all", False)  # a reset turns the vendor limits back on
    resync(full=True)
    filters = DealFilters(source="nodestash")
    before = deal_list(filters=filters, page_size=100)
    simulator = sandbox.simulators["nodestash"]
    gone = sorted(simulator.deals)[:gone_count]
    with sandbox.locks["nodestash"]:
        for deal_id in gone:
            del simulator.deals[deal_id]
        simulator._changed()

    resync(full=True)

    after = deal_list(filters=filters, page_size=100)
    assert after.total_count == before.total_count - gone_count
    assert not set(gone) & {d.id for d in after.deals}


def test_a_board_shows_a_write_at_once(sales_user, connections):
    detail = a_deal("nodestash")
    pipeline_id = detail.deal.pipeline.id
    board = board_get(connection_slug="nodestash", pipeline_id=pipeline_id)
    column = next(c for c in board.columns if any(d.id == detail.deal.id for d in c.deals))
    target = next(c for c in board.targets() if c.kind == "open" and c.id != column.id)

    deal_change_stage(
        user=sales_user,
        connection_slug="nodestash",
        deal_id=detail.deal.id,
        stage_id=target.id,
        seen_updated_at=detail.deal.updated_at.isoformat(),
        idempotency_key=str(uuid.uuid4()),
        originals={"stage": detail.deal.stage.id, "status": detail.deal.status},
    )

    after = board_get(connection_slug="nodestash", pipeline_id=pipeline_id)
    assert after.column(column.id).count == column.count - 1
    assert after.column(target.id).count == board.column(target.id).count + 1
    assert after.column(target.id).deals[0].id == detail.deal.id


def test_a_warm_board_reads_its_cards_in_one_query(connections):
    detail = a_deal("nodestash")
    board_get(connection_slug="nodestash", pipeline_id=detail.deal.pipeline.id)
    with CaptureQueriesContext(db_connection) as warm:
        board = board_get(connection_slug="nodestash", pipeline_id=detail.deal.pipeline.id)

    assert board.deal_count > 0
    assert len(store_reads(warm.captured_queries)) == 1
