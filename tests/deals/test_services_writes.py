"""Writes through the deal service against the sandbox over real HTTP: the exact requests sent,
conflict refusals, idempotent double submits and the audit trail."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dealdesk.deals.models import AuditEntry
from dealdesk.deals.services import (
    DealFilters,
    UnknownConnection,
    deal_change_stage,
    deal_get,
    deal_history,
    deal_list,
    deal_mark_lost,
    deal_mark_won,
    deal_reopen,
    deal_update,
)
from dealdesk.providers.base import (
    AuthenticationFailed,
    Conflict,
    Unavailable,
    ValidationFailed,
)
from tests.deals.demo_deals import writes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Writes re-read first; several writes in one test must not hit a per-second budget."""


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="sam", password="x")


def a_deal(source: str, status: str = "open"):
    """The most recently updated deal of a source with that status, as the list shows it."""
    page = deal_list(filters=DealFilters(source=source, status=status), page_size=5)
    assert page.deals, f"the demo seed has {status} {source} deals"
    return page.deals[0]


def seen(deal) -> str:
    return deal.updated_at.isoformat()


def entries():
    return list(AuditEntry.objects.order_by("id"))


def as_seen(deal, *, user, idempotency_key: str) -> dict:
    """What a state change submits for ``deal`` as the user last saw it: who, which deal, its
    stage and status then, when it was last updated, and the form's idempotency key."""
    return {
        "user": user,
        "connection_slug": deal.connection_slug,
        "deal_id": deal.id,
        "originals": {"stage": deal.stage.id, "status": deal.status},
        "seen_updated_at": seen(deal),
        "idempotency_key": idempotency_key,
    }


# --- Edits: exactly the changed fields ---------------------------------------------------------


def test_nodestash_rename_sends_one_patch_of_the_title_with_the_idempotency_key(
    connections, sandbox, user
):
    deal = a_deal("nodestash")
    sandbox.clear_log()

    detail = deal_update(
        user=user,
        connection_slug="nodestash",
        deal_id=deal.id,
        changes={"name": "Renamed deal", "tags": deal.tags, "value": deal.value.amount},
        originals={"name": deal.name, "tags": deal.tags, "value": deal.value.amount},
        seen_updated_at=seen(deal),
        idempotency_key="key-rename-1",
    )

    get, patch = sandbox.requests("nodestash")
    assert (get.method, get.path) == ("GET", f"/v1/deals/{deal.id}")  # the re-read
    assert (patch.method, patch.path) == ("PATCH", f"/v1/deals/{deal.id}")
    assert patch.body == {"title": "Renamed deal"}
    assert patch.headers["idempotency-key"] == "key-rename-1"
    assert detail.deal.name == "Renamed deal"
    assert sandbox.simulators["nodestash"].deals[deal.id]["title"] == "Renamed deal"
    (entry,) = entries()
    assert entry.outcome == AuditEntry.Outcome.SUCCEEDED
    assert (entry.user, entry.username, entry.action) == (user, "sam", "update")
    assert (entry.connection_slug, entry.connection_label, entry.deal_id) == (
        "nodestash",
        "nodestash",
        deal.id,
    )
    assert entry.changes == [
        {"field": "name", "label": "Name", "old": deal.name, "new": "Renamed deal"}
    ]
    assert entry.request_id.startswith("req_")
    assert entry.idempotency_key == "key-rename-1"
    assert entry.deal_name == "Renamed deal"
    assert detail.history == [entry]


def test_value_and_date_edits_go_as_json_and_are_audited_as_strings(connections, sandbox, user):
    deal = a_deal("nodestash")
    sandbox.clear_log()

    deal_update(
        user=user,
        connection_slug="nodestash",
        deal_id=deal.id,
        changes={"value": Decimal("1234.50"), "expected_close_date": dt.date(2027, 1, 31)},
        seen_updated_at=seen(deal),
        idempotency_key="key-value-1",
    )

    (patch,) = writes(sandbox, "nodestash")
    assert patch.body == {"value": 1234.5, "expected_close_date": "2027-01-31"}
    (entry,) = entries()
    new_values = {change["field"]: change["new"] for change in entry.changes}
    assert new_values == {"value": "1234.50", "expected_close_date": "2027-01-31"}


def test_an_edit_identical_to_the_current_values_sends_nothing(connections, sandbox, user):
    deal = a_deal("nodestash")
    sandbox.clear_log()

    detail = deal_update(
        user=user,
        connection_slug="nodestash",
        deal_id=deal.id,
        changes={"name": deal.name, "tags": list(deal.tags)},
        seen_updated_at=seen(deal),
        idempotency_key="key-same-1",
    )

    assert writes(sandbox, "nodestash") == []
    assert detail.deal.name == deal.name
    assert entries() == []


def test_stora_note_and_assignee_go_in_one_partial_patch(connections, sandbox, user):
    deal = a_deal("stora")
    detail = deal_get(connection_slug="stora", deal_id=deal.id)
    assignee = next(f for f in detail.fields if f.name == "assignee")
    other = next(c for c in assignee.choices if c.value and c.value != assignee.value)
    sandbox.clear_log()

    deal_update(
        user=user,
        connection_slug="stora",
        deal_id=deal.id,
        changes={"note": "Call back on Monday", "assignee": other.value, "name": deal.name},
        seen_updated_at=seen(deal),
        idempotency_key="key-stora-1",
    )

    (patch,) = writes(sandbox, "stora")
    assert (patch.method, patch.path) == ("PATCH", f"/2025-09/deals/{deal.id}")
    assert patch.body == {"note": "Call back on Monday", "assignee": {"id": other.value}}
    (entry,) = entries()
    assignee_change = next(c for c in entry.changes if c["field"] == "assignee")
    assert assignee_change["new"] == other.label  # the history shows names, not ids


def test_an_unknown_field_is_refused_and_audited_as_failed(connections, sandbox, user):
    deal = a_deal("stora")
    sandbox.clear_log()

    with pytest.raises(ValidationFailed) as refused:
        deal_update(
            user=user,
            connection_slug="stora",
            deal_id=deal.id,
            changes={"value": Decimal(5)},
            seen_updated_at=seen(deal),
            idempotency_key="key-unknown-1",
        )

    assert "value" in refused.value.field_errors
    assert writes(sandbox, "stora") == []
    assert [e.outcome for e in entries()] == [AuditEntry.Outcome.FAILED]


# --- State changes through the adapters --------------------------------------------------------


def test_stora_stage_change_patches_the_stage(connections, sandbox, user):
    deal = a_deal("stora")
    detail = deal_get(connection_slug="stora", deal_id=deal.id)
    target = next(s for s in detail.actions.stage_choices if s.id != deal.stage.id)
    sandbox.clear_log()

    result = deal_change_stage(
        stage_id=target.id, **as_seen(deal, user=user, idempotency_key="key-stage-1")
    )

    (patch,) = writes(sandbox, "stora")
    assert (patch.method, patch.path, patch.body) == (
        "PATCH",
        f"/2025-09/deals/{deal.id}",
        {"stage": {"id": target.id}},
    )
    assert result.deal.stage.id == target.id
    (entry,) = entries()
    assert entry.action == "change_stage"
    assert entry.changes == [
        {"field": "stage", "label": "Stage", "old": deal.stage.name, "new": target.name}
    ]


def test_stora_won_lost_and_reopen_post_to_their_endpoints_with_the_key(connections, sandbox, user):
    deal = a_deal("stora")
    sandbox.clear_log()
    won = deal_mark_won(**as_seen(deal, user=user, idempotency_key="key-win-1"))
    (win,) = writes(sandbox, "stora")
    assert (win.method, win.path, win.body) == ("POST", f"/2025-09/deals/{deal.id}/win", None)
    assert win.headers["idempotency-key"] == "key-win-1"
    assert won.deal.status == "won"

    other = a_deal("stora")
    sandbox.clear_log()
    deal_mark_lost(
        reason="price_concerns", **as_seen(other, user=user, idempotency_key="key-lose-1")
    )
    (lose,) = writes(sandbox, "stora")
    assert (lose.path, lose.body) == (
        f"/2025-09/deals/{other.id}/lose",
        {"lost_reason": "price_concerns"},
    )
    assert lose.headers["idempotency-key"] == "key-lose-1"

    detail = deal_get(connection_slug="stora", deal_id=other.id)
    assert detail.deal.status == "lost"
    stage = detail.actions.reopen_stages[-1]
    assignee = detail.actions.reopen_assignees[0]
    sandbox.clear_log()
    reopened = deal_reopen(
        stage_id=stage.id,
        assignee_id=assignee.value,
        **as_seen(detail.deal, user=user, idempotency_key="key-reopen-1"),
    )
    (reopen,) = writes(sandbox, "stora")
    assert (reopen.path, reopen.body) == (
        f"/2025-09/deals/{other.id}/reopen",
        {"stage": {"id": stage.id}, "assignee": {"id": assignee.value}},
    )
    assert reopened.deal.status == "open" and reopened.deal.stage.id == stage.id
    assert [e.action for e in entries()] == ["mark_won", "mark_lost", "reopen"]
    assert all(e.outcome == AuditEntry.Outcome.SUCCEEDED for e in entries())
    reopen_changes = {c["field"]: c for c in entries()[-1].changes}
    assert reopen_changes["status"]["new"] == "Open"
    assert reopen_changes["assignee"]["new"] == assignee.label


def test_nodestash_won_lost_and_reopen_patch_the_stage(connections, sandbox, user):
    deal = a_deal("nodestash")
    detail = deal_get(connection_slug="nodestash", deal_id=deal.id)
    lost_stage = detail.actions.lost_stages[0]
    sandbox.clear_log()

    lost = deal_mark_lost(
        reason=lost_stage.id, **as_seen(deal, user=user, idempotency_key="key-ns-lose")
    )
    (patch,) = writes(sandbox, "nodestash")
    assert (patch.method, patch.body) == ("PATCH", {"stage_id": lost_stage.id})
    assert patch.headers["idempotency-key"] == "key-ns-lose"
    assert lost.deal.status == "lost" and lost.deal.stage.id == lost_stage.id

    open_stage = lost.actions.reopen_stages[0]
    sandbox.clear_log()
    reopened = deal_reopen(
        stage_id=open_stage.id,
        assignee_id=None,
        **as_seen(lost.deal, user=user, idempotency_key="key-ns-reopen"),
    )
    (patch,) = writes(sandbox, "nodestash")
    assert patch.body == {"stage_id": open_stage.id}
    assert reopened.deal.status == "open" and reopened.deal.stage.id == open_stage.id

    sandbox.clear_log()
    won = deal_mark_won(**as_seen(reopened.deal, user=user, idempotency_key="key-ns-win"))
    (patch,) = writes(sandbox, "nodestash")
    assert set(patch.body) == {"stage_id"}
    assert won.deal.status == "won"
    assert [e.action for e in entries()] == ["mark_lost", "reopen", "mark_won"]


# --- Idempotency ---------------------------------------------------------------------------


def test_a_double_submitted_win_acts_once_and_is_audited_once(connections, sandbox, user):
    deal = a_deal("stora")
    sandbox.clear_log()
    submit = as_seen(deal, user=user, idempotency_key="key-double-win")

    deal_mark_won(**submit)
    again = deal_mark_won(**submit)

    assert [(r.method, r.path) for r in writes(sandbox, "stora")] == [
        ("POST", f"/2025-09/deals/{deal.id}/win")
    ]
    assert again.deal.status == "won"
    assert len(entries()) == 1


def test_a_double_submitted_edit_patches_once(connections, sandbox, user):
    deal = a_deal("nodestash")
    sandbox.clear_log()
    submit = {
        "user": user,
        "connection_slug": "nodestash",
        "deal_id": deal.id,
        "changes": {"name": "Only once"},
        "originals": {"name": deal.name},
        "seen_updated_at": seen(deal),
        "idempotency_key": "key-double-edit",
    }

    deal_update(**submit)
    again = deal_update(**submit)

    assert len(writes(sandbox, "nodestash")) == 1
    assert again.deal.name == "Only once"
    assert len(entries()) == 1


# --- No lost updates -------------------------------------------------------------------------


def test_a_field_changed_elsewhere_is_refused_and_not_overwritten(connections, sandbox, user):
    deal = a_deal("nodestash")
    sandbox.mutate_deal("nodestash", deal.id, {"title": "Changed elsewhere"})
    sandbox.clear_log()

    with pytest.raises(Conflict) as refused:
        deal_update(
            user=user,
            connection_slug="nodestash",
            deal_id=deal.id,
            changes={"name": "My rename"},
            originals={"name": deal.name},
            seen_updated_at=seen(deal),
            idempotency_key="key-conflict-1",
        )

    assert refused.value.fields == ("name",)
    assert refused.value.current.name == "Changed elsewhere"
    assert writes(sandbox, "nodestash") == []
    assert sandbox.simulators["nodestash"].deals[deal.id]["title"] == "Changed elsewhere"
    (entry,) = entries()
    assert entry.outcome == AuditEntry.Outcome.CONFLICT
    assert entry.changes[0]["new"] == "My rename"
    assert "Name changed in nodestash" in entry.error_message


def test_a_change_to_another_field_still_goes_through(connections, sandbox, user):
    deal = a_deal("nodestash")
    sandbox.mutate_deal("nodestash", deal.id, {"title": "Changed elsewhere"})
    sandbox.clear_log()

    detail = deal_update(
        user=user,
        connection_slug="nodestash",
        deal_id=deal.id,
        changes={"tags": ("urgent",)},
        originals={"tags": deal.tags},
        seen_updated_at=seen(deal),
        idempotency_key="key-other-field",
    )

    (patch,) = writes(sandbox, "nodestash")
    assert patch.body == {"tags": ["urgent"]}
    assert detail.deal.name == "Changed elsewhere"
    assert detail.deal.tags == ("urgent",)


def test_without_originals_a_newer_updated_at_refuses_every_changed_field(
    connections, sandbox, user
):
    deal = a_deal("stora")
    sandbox.mutate_deal("stora", deal.id, {"note": "Edited elsewhere"})
    sandbox.clear_log()

    with pytest.raises(Conflict) as refused:
        deal_update(
            user=user,
            connection_slug="stora",
            deal_id=deal.id,
            changes={"name": "Mine"},
            seen_updated_at=seen(deal),
            idempotency_key="key-seen-only",
        )

    assert refused.value.fields == ("name",)
    assert writes(sandbox, "stora") == []


def test_a_stage_change_on_a_deal_closed_elsewhere_is_refused(connections, sandbox, user):
    deal = a_deal("stora")
    sandbox.mutate_deal("stora", deal.id, {"status": "won"})  # the store has not seen it yet
    assert deal_get(connection_slug="stora", deal_id=deal.id).deal.status == "open"
    sandbox.clear_log()

    with pytest.raises(Conflict) as refused:
        deal_mark_lost(
            reason="price_concerns",
            **as_seen(deal, user=user, idempotency_key="key-closed-elsewhere"),
        )

    assert refused.value.fields == ("status",)
    assert refused.value.current.status == "won"
    assert writes(sandbox, "stora") == []
    # The write's re-read is the freshest copy: every page now shows the deal as won.
    assert deal_get(connection_slug="stora", deal_id=deal.id).deal.status == "won"
    assert [e.outcome for e in entries()] == [AuditEntry.Outcome.CONFLICT]


def test_an_upstream_409_is_a_conflict_with_the_current_deal(connections, sandbox, user):
    deal = a_deal("stora")
    sandbox.mutate_deal("stora", deal.id, {"status": "won"})

    with pytest.raises(Conflict) as refused:  # Stora refuses to lose a won deal (S-A6)
        deal_mark_lost(
            user=user,
            connection_slug="stora",
            deal_id=deal.id,
            reason="price_concerns",
            seen_updated_at=None,
            idempotency_key="key-409",
        )

    assert refused.value.current is not None and refused.value.current.status == "won"
    (entry,) = entries()
    assert entry.outcome == AuditEntry.Outcome.CONFLICT
    assert entry.request_id.startswith("req_")


# --- Failures are audited --------------------------------------------------------------------


def test_an_upstream_validation_error_is_audited_as_failed_with_its_request_id(
    connections, sandbox, user
):
    deal = a_deal("stora")

    with pytest.raises(ValidationFailed):
        deal_update(
            user=user,
            connection_slug="stora",
            deal_id=deal.id,
            changes={"name": "   "},
            seen_updated_at=seen(deal),
            idempotency_key="key-invalid",
        )

    (entry,) = entries()
    assert entry.outcome == AuditEntry.Outcome.FAILED
    assert entry.error_message
    assert entry.request_id.startswith("req_")
    assert entry.changes == [{"field": "name", "label": "Name", "old": deal.name, "new": "   "}]


def test_a_failed_re_read_is_audited_and_nothing_is_written(connections, sandbox, user):
    deal = a_deal("nodestash")
    sandbox.fail_next(
        "nodestash",
        1,
        500,
        body={"error": {"code": "INTERNAL_ERROR", "message": "boom"}, "meta": {"request_id": "r1"}},
    )
    sandbox.clear_log()

    with pytest.raises(Unavailable):
        deal_update(
            user=user,
            connection_slug="nodestash",
            deal_id=deal.id,
            changes={"name": "Never sent"},
            seen_updated_at=seen(deal),
            idempotency_key="key-reread-fails",
        )

    assert writes(sandbox, "nodestash") == []
    (entry,) = entries()
    assert (entry.outcome, entry.request_id) == (AuditEntry.Outcome.FAILED, "r1")


def test_history_lists_the_deals_entries_newest_first(connections, user):
    deal = a_deal("nodestash")
    for index, name in enumerate(("First", "Second")):
        deal_update(
            user=user,
            connection_slug="nodestash",
            deal_id=deal.id,
            changes={"name": name},
            seen_updated_at=None,
            idempotency_key=f"key-history-{index}",
        )

    history = deal_history(connection_slug="nodestash", deal_id=deal.id)

    assert [e.changes[0]["new"] for e in history] == ["Second", "First"]


# --- Connections -----------------------------------------------------------------------------


def test_an_unknown_or_disabled_connection_is_unknown(connections, user):
    with pytest.raises(UnknownConnection):
        deal_get(connection_slug="nope", deal_id="deal_1")
    connections["stora"].enabled = False
    connections["stora"].save()
    with pytest.raises(UnknownConnection):
        deal_update(
            user=user,
            connection_slug="stora",
            deal_id="deal_1",
            changes={"name": "x"},
            seen_updated_at=None,
            idempotency_key="key-disabled",
        )
    assert entries() == []


def test_an_undecryptable_key_fails_detail_and_writes_with_plain_words(connections, user):
    connections["stora"].api_key_encrypted = "stored-under-another-key"
    connections["stora"].save()
    message = "cannot decrypt the stored key of Stora; an admin must enter it again."

    with pytest.raises(AuthenticationFailed, match=message):
        deal_get(connection_slug="stora", deal_id="deal_1")
    with pytest.raises(AuthenticationFailed, match=message):
        deal_mark_won(
            user=user,
            connection_slug="stora",
            deal_id="deal_1",
            seen_updated_at=None,
            idempotency_key="key-undecryptable",
        )
    assert [e.outcome for e in entries()] == [AuditEntry.Outcome.FAILED]
