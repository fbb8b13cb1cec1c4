"""The sync engine against the sandbox over real HTTP, with the vendors' rate limits on."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection as db_connection

from dealdesk.sync.engine import sync_run
from dealdesk.sync.management.commands.sync import sync_until_done
from dealdesk.sync.models import SyncedDeal, SyncState
from tests.conftest import make_connection

pytestmark = pytest.mark.django_db(transaction=True)

SEEDED_DEALS = 260  # three pages of 100 per source


@pytest.fixture
def big_sandbox(sandbox, settings):
    sandbox.reset(str(SEEDED_DEALS))
    sandbox.set_rate_limiting("all", True)  # the vendors' limits are on in these tests
    # The whole of each vendor limit, so tests run fast; the share test sets its own.
    settings.DEALDESK_SYNC_SHARE = 1.0
    yield sandbox
    sandbox.reset("demo")


def connect(sandbox_server, provider: str):
    from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN

    url, token = {
        "stora": (sandbox_server.stora_url, DEFAULT_STORA_TOKEN),
        "nodestash": (sandbox_server.nodestash_url, DEFAULT_NODESTASH_TOKEN),
    }[provider]
    return make_connection(
        slug=provider, label=provider.title(), provider=provider, base_url=url, api_key=token
    )


def stored_ids(connection) -> set[str]:
    return set(
        SyncedDeal.objects.filter(connection=connection, deleted=False).values_list(
            "upstream_id", flat=True
        )
    )


def upstream_ids(sandbox, provider: str) -> set[str]:
    return set(sandbox.simulators[provider].deals)


def vendor_429s(sandbox) -> list:
    return [r for r in sandbox.requests() if getattr(r, "status", None) == 429]


@pytest.mark.parametrize("provider", ["stora", "nodestash"])
def test_backfill_pages_through_everything_and_resumes_after_an_interruption(
    provider, sandbox_server, big_sandbox
):
    connection = connect(sandbox_server, provider)

    # A first run cut short after its first page: progress is kept.
    first = sync_run(connection, time_limit=0.001)
    state = SyncState.objects.get(connection=connection)
    assert not first.done and not state.backfill_done
    assert 0 < state.backfill_count < SEEDED_DEALS and state.backfill_cursor
    pages_before = first.pages

    report = sync_until_done(connection, full=False)

    state.refresh_from_db()
    assert state.backfill_done and state.state == "in_sync"
    assert stored_ids(connection) == upstream_ids(big_sandbox, provider)
    assert pages_before + report.pages <= 4  # resumed, not started over
    assert state.deals_stored == SEEDED_DEALS


@pytest.mark.parametrize("provider", ["stora", "nodestash"])
def test_an_upstream_change_appears_after_one_poll_costing_one_call(
    provider, sandbox_server, big_sandbox
):
    connection = connect(sandbox_server, provider)
    sync_until_done(connection, full=False)
    deal_id = sorted(upstream_ids(big_sandbox, provider))[7]
    name_field = "name" if provider == "stora" else "title"
    big_sandbox.mutate_deal(provider, deal_id, {name_field: "Changed behind our back"})
    big_sandbox.clear_log()

    report = sync_run(connection)

    row = SyncedDeal.objects.get(connection=connection, upstream_id=deal_id)
    assert row.name == "Changed behind our back"
    assert report.phase == "incremental" and report.calls == 1
    assert len(big_sandbox.requests(provider)) == 1


def test_an_idle_poll_costs_one_call_and_changes_nothing(sandbox_server, big_sandbox):
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    before = dict(SyncedDeal.objects.values_list("upstream_id", "synced_at"))

    report = sync_run(connection)

    assert report.calls == 1
    # Deals at the high-water mark are read again (the overlap) but nothing else is rewritten.
    after = dict(SyncedDeal.objects.values_list("upstream_id", "synced_at"))
    assert sum(1 for key in before if before[key] != after[key]) <= 2


@pytest.mark.parametrize("provider", ["stora", "nodestash"])
def test_a_deleted_deal_disappears_after_a_full_walk(provider, sandbox_server, big_sandbox):
    connection = connect(sandbox_server, provider)
    sync_until_done(connection, full=False)
    gone = sorted(upstream_ids(big_sandbox, provider))[3]
    simulator = big_sandbox.simulators[provider]
    with big_sandbox.locks[provider]:
        del simulator.deals[gone]
        simulator._changed()

    sync_run(connection)  # a poll cannot see a deletion
    assert gone in stored_ids(connection)
    report = sync_until_done(connection, full=True)

    assert gone not in stored_ids(connection)
    assert report.deleted == 1
    assert stored_ids(connection) == upstream_ids(big_sandbox, provider)


def test_a_full_walk_overwrites_a_stored_deal_even_when_upstream_is_older(
    sandbox_server, big_sandbox
):
    connection = connect(sandbox_server, "stora")
    sync_until_done(connection, full=False)
    row = SyncedDeal.objects.filter(connection=connection).first()
    SyncedDeal.objects.filter(pk=row.pk).update(
        name="Restored from a newer backup", upstream_updated_at="2099-01-01T00:00:00Z"
    )

    sync_run(connection)  # a poll never lets an older copy win
    assert SyncedDeal.objects.get(pk=row.pk).name == "Restored from a newer backup"
    sync_until_done(connection, full=True)

    assert SyncedDeal.objects.get(pk=row.pk).name == row.name


def test_two_workers_never_sync_one_connection_at_the_same_time(sandbox_server, big_sandbox):
    connection = connect(sandbox_server, "stora")
    big_sandbox.set_latency("stora", 150)
    reports = []

    def worker():
        try:
            reports.append(sync_run(connection, time_limit=None))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(60)

    assert sorted(r.locked for r in reports) == [False, True]
    lists = [r for r in big_sandbox.requests("stora") if r.path == "/2025-09/deals"]
    assert len(lists) == 3  # one backfill of three pages, not two
    state = SyncState.objects.get(connection=connection)
    assert state.lock_owner == "" and state.backfill_done


def test_a_worker_killed_mid_sync_loses_nothing(sandbox_server, big_sandbox):
    connection = connect(sandbox_server, "nodestash")
    sync_run(connection, time_limit=0.001)  # one page stored, then "killed" with its lease held
    SyncState.objects.filter(connection=connection).update(lock_owner="dead-worker")

    assert sync_run(connection).locked  # the lease still holds…
    SyncState.objects.filter(connection=connection).update(lock_expires_at="2000-01-01T00:00:00Z")
    sync_until_done(connection, full=False)  # …until it expires; then the sync resumes

    assert stored_ids(connection) == upstream_ids(big_sandbox, "nodestash")


def test_the_sync_stays_within_its_share_and_never_draws_a_vendor_429(
    sandbox_server, big_sandbox, settings
):
    settings.DEALDESK_SYNC_SHARE = 0.5
    stora = connect(sandbox_server, "stora")
    nodestash = connect(sandbox_server, "nodestash")

    for connection in (stora, nodestash):
        sync_until_done(connection, full=False)
    for _ in range(3):
        sync_run(stora)
        sync_run(nodestash)

    statuses = [r.status for r in big_sandbox.requests() if hasattr(r, "status")]
    assert 429 not in statuses
    # nodestash's burst is 5/s: half of it is 2 calls a second at most.
    stamps = sorted(r.started for r in big_sandbox.requests("nodestash"))
    per_second = max(sum(1 for s in stamps if start <= s < start + 1.0) for start in stamps)
    assert per_second <= 3


def test_a_vendor_429_pauses_the_sync_until_the_reset(sandbox_server, big_sandbox):
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    big_sandbox.fail_next(
        "nodestash",
        1,
        429,
        {"error": {"code": "RATE_LIMITED", "message": "slow down", "retry_after": 30}},
        {"Retry-After": "30"},
    )

    report = sync_run(connection)
    again = sync_run(connection)

    assert report.paused_until is not None
    assert again.paused_until == report.paused_until and again.calls == 0
    state = SyncState.objects.get(connection=connection)
    assert state.state == "in_sync"  # rate limiting is not a failure
    assert state.last_error_kind == "rate_limited"


def test_sync_wait_sleeps_until_the_vendors_reset_not_longer(
    sandbox_server, sandbox, settings, monkeypatch
):
    sandbox.set_rate_limiting("all", True)  # the demo seed: the wait is under test, not paging
    settings.DEALDESK_SYNC_SHARE = 1.0
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    sandbox.fail_next(
        "nodestash",
        1,
        429,
        {"error": {"code": "RATE_LIMITED", "message": "slow down", "retry_after": 2}},
        {"Retry-After": "2"},
    )
    waits: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if threading.current_thread() is threading.main_thread():
            waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)

    report = sync_until_done(connection, full=False)  # one poll: refused, then sent again

    assert not report.error and report.done
    assert waits and max(waits) <= 2.0  # until the reset, not a fixed 5 s
    assert report.calls == 1


def test_a_deal_linked_to_a_contact_the_store_does_not_know_reads_reference_data_again(
    sandbox_server, big_sandbox
):
    connection = connect(sandbox_server, "stora")
    sync_until_done(connection, full=False)
    simulator = big_sandbox.simulators["stora"]
    contact = {**next(iter(simulator.contacts.values())), "id": "con_addedlater0001"}
    contact["full_name"] = "Added Later"
    simulator.contacts[contact["id"]] = contact
    deal_id = sorted(simulator.deals)[5]
    big_sandbox.mutate_deal("stora", deal_id, {"contact": {"id": contact["id"]}})
    big_sandbox.clear_log()

    sync_run(connection)

    row = SyncedDeal.objects.get(connection=connection, upstream_id=deal_id)
    assert row.contact_name == "Added Later"
    paths = [r.path for r in big_sandbox.requests("stora")]
    assert paths.count("/2025-09/contacts") >= 1  # one refresh of the reference data
    big_sandbox.clear_log()
    sync_run(connection)
    assert [r.path for r in big_sandbox.requests("stora")] == ["/2025-09/deals"]
