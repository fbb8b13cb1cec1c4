"""The nodestash adapter's activities (nodestash.md §20) against the sandbox over real HTTP:
the exact requests it sends, what it parses, and the fallbacks of N-A9 and N-A10."""

from __future__ import annotations

import datetime as dt

import pytest

from dealdesk.providers.assumptions import FELL_BACK, HELD
from dealdesk.providers.base import (
    NotFound,
    ValidationFailed,
    supports_activities,
)
from dealdesk.providers.nodestash import NodestashAdapter
from dealdesk.providers.registry import activities_supported
from dealdesk.providers.stora import StoraAdapter


@pytest.fixture
def adapter(nodestash_info, sandbox) -> NodestashAdapter:
    sandbox.set_rate_limiting("nodestash", False)
    adapter = NodestashAdapter(nodestash_info)
    adapter.budget.limits = [(1000, 1)]
    return adapter


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["nodestash"]


def an_open_task(simulator) -> dict:
    return next(
        a for a in simulator.activities.values() if a["type"] == "task" and not a["is_done"]
    )


def state_of(adapter, assumption_id: str) -> str:
    return next(s.state for s in adapter.assumption_report() if s.assumption.id == assumption_id)


def test_only_nodestash_keeps_activities():
    assert supports_activities(NodestashAdapter)
    assert not supports_activities(StoraAdapter)
    assert activities_supported("nodestash") and not activities_supported("stora")


def test_list_reads_most_recently_changed_first_with_the_largest_page(adapter, sandbox, simulator):
    page = adapter.list_activities(cursor=None, limit=100)

    (record,) = sandbox.requests("nodestash")
    assert (record.method, record.path) == ("GET", "/v1/activities")
    assert record.query == {"sort": ["-updated_at"], "limit": ["100"]}
    assert page.order == "updated_at" and len(page.activities) == len(simulator.activities)
    stamps = [a.updated_at for a in page.activities]
    assert stamps == sorted(stamps, reverse=True)
    first = simulator.activities[page.activities[0].id]
    parsed = page.activities[0]
    assert (parsed.kind, parsed.subject, parsed.deal_id) == (
        first["type"],
        first["subject"],
        first["deal_id"],
    )
    assert state_of(adapter, "N-A10") == HELD


def test_following_the_cursor_reads_every_activity_once(adapter, simulator):
    seen, cursor = [], None
    while True:
        page = adapter.list_activities(cursor=cursor, limit=10)
        seen += [a.id for a in page.activities]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(simulator.activities)


def test_a_task_is_posted_with_its_due_date_and_an_idempotency_key(adapter, sandbox, simulator):
    deal_id = next(iter(simulator.deals))

    task = adapter.create_activity(
        deal_id=deal_id,
        kind="task",
        subject="Call back",
        body=None,
        due_date=dt.date(2030, 1, 15),
        idempotency_key="key-task-1",
    )

    (record,) = sandbox.requests("nodestash")
    assert (record.method, record.path) == ("POST", "/v1/activities")
    assert record.body == {
        "type": "task",
        "subject": "Call back",
        "deal_id": deal_id,
        "due_date": "2030-01-15",
    }
    assert record.headers["idempotency-key"] == "key-task-1"
    assert task.id in simulator.activities
    assert (task.kind, task.subject, task.due_date, task.is_done) == (
        "task",
        "Call back",
        dt.date(2030, 1, 15),
        False,
    )
    assert task.is_open_step


def test_a_note_carries_its_details_and_is_never_a_step(adapter, sandbox, simulator):
    deal_id = next(iter(simulator.deals))

    note = adapter.create_activity(
        deal_id=deal_id,
        kind="note",
        subject="Met the buyer",
        body="Budget approved.",
        due_date=None,
        idempotency_key="key-note-1",
    )

    (record,) = sandbox.requests("nodestash")
    assert record.body == {
        "type": "note",
        "subject": "Met the buyer",
        "deal_id": deal_id,
        "body": "Budget approved.",
    }
    assert note.body == "Budget approved." and not note.is_open_step


def test_the_same_idempotency_key_creates_one_activity(adapter, simulator):
    deal_id = next(iter(simulator.deals))
    before = len(simulator.activities)
    arguments = {
        "deal_id": deal_id,
        "kind": "note",
        "subject": "Once",
        "body": None,
        "due_date": None,
        "idempotency_key": "key-once",
    }

    first = adapter.create_activity(**arguments)
    again = adapter.create_activity(**arguments)

    assert first.id == again.id and len(simulator.activities) == before + 1


def test_an_empty_subject_is_refused_on_the_subject_field(adapter, simulator):
    with pytest.raises(ValidationFailed) as caught:
        adapter.create_activity(
            deal_id=next(iter(simulator.deals)),
            kind="note",
            subject="   ",
            body=None,
            due_date=None,
            idempotency_key="key-empty",
        )
    assert "subject" in caught.value.field_errors


def test_a_crafted_deal_id_is_never_sent(adapter, sandbox):
    with pytest.raises(NotFound):
        adapter.create_activity(
            deal_id="../pipelines",
            kind="note",
            subject="x",
            body=None,
            due_date=None,
            idempotency_key="k",
        )
    assert sandbox.requests("nodestash") == []


def test_mark_done_patches_is_done_with_an_idempotency_key(adapter, sandbox, simulator):
    raw = an_open_task(simulator)
    activity = _parsed(adapter, raw["id"])
    sandbox.clear_log()

    done = adapter.complete_activity(activity, idempotency_key="key-done")

    (record,) = sandbox.requests("nodestash")
    assert (record.method, record.path, record.body) == (
        "PATCH",
        f"/v1/activities/{raw['id']}",
        {"is_done": True},
    )
    assert record.headers["idempotency-key"] == "key-done"
    assert done.id == raw["id"] and done.is_done and done.completed_at is not None
    assert simulator.activities[raw["id"]]["is_done"] is True
    assert state_of(adapter, "N-A9") == HELD


def _parsed(adapter, activity_id: str):
    cursor = None
    while True:
        page = adapter.list_activities(cursor=cursor, limit=100)
        for activity in page.activities:
            if activity.id == activity_id:
                return activity
        cursor = page.next_cursor
        assert cursor, "activity not listed"


def test_a_refused_patch_falls_back_to_creating_it_done_and_deleting_the_open_one(
    adapter, sandbox, simulator
):
    raw = an_open_task(simulator)
    activity = _parsed(adapter, raw["id"])
    sandbox.set_variants("nodestash", ["activity_patch_405"])
    sandbox.clear_log()

    done = adapter.complete_activity(activity, idempotency_key="key-fallback")

    calls = [(r.method, r.path) for r in sandbox.requests("nodestash")]
    assert calls == [
        ("PATCH", f"/v1/activities/{raw['id']}"),
        ("GET", f"/v1/activities/{raw['id']}"),
        ("POST", "/v1/activities"),
        ("DELETE", f"/v1/activities/{raw['id']}"),
    ]
    post = sandbox.requests("nodestash")[2]
    assert post.body["is_done"] is True and post.body["subject"] == raw["subject"]
    assert post.body["deal_id"] == raw["deal_id"]
    assert raw["id"] not in simulator.activities
    assert done.is_done and done.id != raw["id"] and done.deal_id == raw["deal_id"]
    assert state_of(adapter, "N-A9") == FELL_BACK


def test_a_refused_sort_falls_back_to_newest_created_first(adapter, sandbox):
    sandbox.set_variants("nodestash", ["activity_sort_created_only"])

    page = adapter.list_activities(cursor=None, limit=100)
    again = adapter.list_activities(cursor=None, limit=100)

    sorts = [r.query["sort"] for r in sandbox.requests("nodestash")]
    assert sorts == [["-updated_at"], ["-created_at"], ["-created_at"]]
    assert page.order == again.order == "created_at" and page.activities
    assert state_of(adapter, "N-A10") == FELL_BACK


def test_a_crafted_activity_id_is_never_sent(adapter, sandbox, simulator):
    activity = _parsed(adapter, an_open_task(simulator)["id"])
    sandbox.clear_log()
    crafted = type(activity)(**{**activity.__dict__, "id": "act_x/../../deals"})

    with pytest.raises(NotFound):
        adapter.complete_activity(crafted, idempotency_key="k")
    assert sandbox.requests("nodestash") == []
