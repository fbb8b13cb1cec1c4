"""Activities in the synced store: the sync engine fills them from the nodestash adapter over
real HTTP (vendor rate limits on), within the sync's quota share, and computes every deal's
next step from them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dealdesk.providers.nodestash import NodestashAdapter
from dealdesk.sync.engine import sync_run
from dealdesk.sync.management.commands.sync import sync_until_done
from dealdesk.sync.models import SyncedActivity, SyncedDeal, SyncState
from tests.conftest import make_connection

pytestmark = pytest.mark.django_db(transaction=True)

SEEDED_DEALS = 260


@pytest.fixture
def seeded(sandbox, settings):
    sandbox.reset(str(SEEDED_DEALS))
    sandbox.set_rate_limiting("all", True)
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


def expected_next_steps(simulator) -> dict[str, tuple[str, dt.date | None, str]]:
    """Each open deal's next step, worked out from the simulator's own data."""
    open_stages = {
        s["id"] for p in simulator.pipelines.values() for s in p["stages"] if s["type"] == "open"
    }
    steps: dict[str, list[dict]] = {}
    for activity in simulator.activities.values():
        if activity["type"] != "note" and not activity["is_done"] and activity["deal_id"]:
            steps.setdefault(activity["deal_id"], []).append(activity)
    expected = {}
    for deal_id, deal in simulator.deals.items():
        if deal["stage_id"] not in open_stages:
            continue
        todo = sorted(
            steps.get(deal_id, []),
            key=lambda a: (a["due_date"] is None, a["due_date"] or "", a["created_at"], a["id"]),
        )
        if todo:
            due = dt.date.fromisoformat(todo[0]["due_date"][:10]) if todo[0]["due_date"] else None
            expected[deal_id] = ("planned", due, todo[0]["subject"])
        else:
            expected[deal_id] = ("none", None, "")
    return expected


def stored_next_steps(connection) -> dict[str, tuple[str, dt.date | None, str]]:
    rows = SyncedDeal.objects.filter(connection=connection, deleted=False, status="open")
    return {r.upstream_id: (r.next_step_state, r.next_step_due, r.next_step_subject) for r in rows}


def upstream_adapter(connection) -> NodestashAdapter:
    """Someone working in nodestash itself (its own budget, not the sync's)."""
    return NodestashAdapter(connection.info())


def test_activities_arrive_in_the_store_with_every_deal_next_step(sandbox_server, seeded):
    nodestash = connect(sandbox_server, "nodestash")
    stora = connect(sandbox_server, "stora")

    report = sync_until_done(nodestash, full=False)
    sync_until_done(stora, full=False)

    simulator = seeded.simulators["nodestash"]
    stored = set(
        SyncedActivity.objects.filter(connection=nodestash, deleted=False).values_list(
            "upstream_id", flat=True
        )
    )
    assert stored == set(simulator.activities)
    assert report.activity_pages >= 1
    expected = expected_next_steps(simulator)
    assert stored_next_steps(nodestash) == expected
    states = {state for state, _due, _subject in expected.values()}
    assert states == {"planned", "none"}  # the seed has both
    # A source without activities is never marked "no next step".
    assert not SyncedDeal.objects.filter(connection=stora).exclude(next_step_state="").exists()
    lists = [r for r in seeded.requests("nodestash") if r.path == "/v1/activities"]
    assert lists and all(r.query["limit"] == ["100"] for r in lists)
    assert all(r.status != 429 for r in seeded.requests())


def test_a_task_added_upstream_gives_a_deal_its_next_step_after_one_poll(
    sandbox_server, seeded, settings
):
    settings.DEALDESK_SYNC_ACTIVITY_INTERVAL = 0
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    deal_id = next(d for d, step in stored_next_steps(connection).items() if step[0] == "none")
    due = timezone.localdate() + dt.timedelta(days=3)
    task = upstream_adapter(connection).create_activity(
        deal_id=deal_id,
        kind="task",
        subject="Send the contract",
        body=None,
        due_date=due,
        idempotency_key="upstream-task",
    )
    seeded.clear_log()

    report = sync_run(connection)

    row = SyncedDeal.objects.get(connection=connection, upstream_id=deal_id)
    assert (row.next_step_state, row.next_step_due, row.next_step_subject) == (
        "planned",
        due,
        "Send the contract",
    )
    assert SyncedActivity.objects.filter(connection=connection, upstream_id=task.id).exists()
    calls = [(r.path, r.query.get("sort")) for r in seeded.requests("nodestash")]
    assert calls == [("/v1/deals", ["-updated_at"]), ("/v1/activities", ["-updated_at"])]
    assert report.calls == 2


def test_a_task_done_upstream_leaves_the_deal_with_no_next_step(sandbox_server, seeded, settings):
    settings.DEALDESK_SYNC_ACTIVITY_INTERVAL = 0
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    simulator = seeded.simulators["nodestash"]
    open_steps: dict[str, list[str]] = {}
    for activity in simulator.activities.values():
        if activity["type"] != "note" and not activity["is_done"]:
            open_steps.setdefault(activity["deal_id"], []).append(activity["id"])
    deal_id, (only,) = next((d, ids) for d, ids in open_steps.items() if len(ids) == 1)
    stored = SyncedActivity.objects.get(connection=connection, upstream_id=only)
    assert SyncedDeal.objects.get(upstream_id=deal_id).next_step_state == "planned"
    from dealdesk.sync.activity_store import activity_from_row

    upstream_adapter(connection).complete_activity(
        activity_from_row(stored), idempotency_key="upstream-done"
    )

    sync_run(connection)

    assert SyncedDeal.objects.get(upstream_id=deal_id).next_step_state == "none"
    assert SyncedActivity.objects.get(upstream_id=only).is_done


def test_a_deal_poll_between_activity_polls_stays_one_call(sandbox_server, seeded, settings):
    settings.DEALDESK_SYNC_ACTIVITY_INTERVAL = 3600
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    seeded.clear_log()

    report = sync_run(connection)

    assert report.calls == 1 and report.activity_pages == 0
    assert [r.path for r in seeded.requests("nodestash")] == ["/v1/deals"]


def test_the_activity_poll_waits_when_the_sync_share_of_the_daily_quota_is_spent(
    sandbox_server, seeded, settings
):
    settings.DEALDESK_SYNC_SHARE = 0.5
    settings.DEALDESK_SYNC_ACTIVITY_INTERVAL = 0
    seeded.set_plan("nodestash", "free")
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    deal_id = next(iter(stored_next_steps(connection)))
    note = upstream_adapter(connection).create_activity(
        deal_id=deal_id,
        kind="note",
        subject="Written in nodestash",
        body=None,
        due_date=None,
        idempotency_key="upstream-note",
    )
    # What is left today is the people's share: the sync must leave it alone.
    seeded.set_daily_remaining("nodestash", 2)
    seeded.clear_log()

    report = sync_run(connection)

    assert [r.path for r in seeded.requests("nodestash")] == ["/v1/deals"]
    assert any("daily share spent" in note_ for note_ in report.notes)
    assert not SyncedActivity.objects.filter(upstream_id=note.id).exists()
    assert all(r.status != 429 for r in seeded.requests())


def test_a_full_resync_drops_activities_deleted_upstream(sandbox_server, seeded):
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    simulator = seeded.simulators["nodestash"]
    gone = next(
        a["id"] for a in simulator.activities.values() if a["type"] == "task" and not a["is_done"]
    )
    deal_id = simulator.activities[gone]["deal_id"]
    with seeded.locks["nodestash"]:
        del simulator.activities[gone]

    sync_until_done(connection, full=True)

    assert SyncedActivity.objects.get(upstream_id=gone).deleted
    assert stored_next_steps(connection)[deal_id] == expected_next_steps(simulator)[deal_id]
    state = SyncState.objects.get(connection=connection)
    assert state.activity_walk_done and not state.activity_cursor


def test_with_the_sort_refused_new_activities_still_arrive(sandbox_server, seeded, settings):
    settings.DEALDESK_SYNC_ACTIVITY_INTERVAL = 0
    seeded.set_variants("nodestash", ["activity_sort_created_only"])
    connection = connect(sandbox_server, "nodestash")
    sync_until_done(connection, full=False)
    deal_id = next(iter(stored_next_steps(connection)))
    note = upstream_adapter(connection).create_activity(
        deal_id=deal_id,
        kind="note",
        subject="Newest",
        body=None,
        due_date=None,
        idempotency_key="upstream-newest",
    )

    sync_run(connection)

    assert SyncedActivity.objects.filter(upstream_id=note.id).exists()
    assert SyncedActivity.objects.filter(connection=connection).count() == len(
        seeded.simulators["nodestash"].activities
    )
