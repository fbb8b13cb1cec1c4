"""Writes to a deal's timeline: add a note, add a task, mark a task done.

Each goes upstream first through the connection's adapter (``ActivitySource``), puts the
vendor's answer into the store at once (with the deal's next step recomputed), and leaves an
audit entry whatever happens, like every deal write (``deals/services.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from dealdesk.connections.models import Connection
from dealdesk.deals.audit import audit_change, audit_record, audit_succeeded_before
from dealdesk.deals.models import AuditEntry
from dealdesk.deals.services import (
    OUTCOME_UNKNOWN_CODES,
    adapter_for_connection,
    connection_for_slug,
)
from dealdesk.providers.base import (
    NOTE,
    TASK,
    WRITE_OUTCOME_UNKNOWN,
    Activity,
    ActivitySource,
    NotFound,
    ProviderError,
    Unavailable,
    ValidationFailed,
    supports_activities,
)
from dealdesk.providers.http import write_priority
from dealdesk.sync.activity_store import (
    activities_save,
    activity_mark_deleted,
    next_steps_refresh,
    stored_activity,
)
from dealdesk.sync.store import stored_deal

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    User = AbstractBaseUser | AnonymousUser

__all__ = ["NO_ACTIVITIES", "activity_add_note", "activity_add_task", "activity_complete"]

NO_ACTIVITIES = "no_activities"  # the code of the refusal for a source without activities


def _source(connection: Connection, deal_id: str) -> ActivitySource:
    adapter = adapter_for_connection(connection)
    if not adapter.is_deal_id(deal_id):
        raise NotFound(
            f"{connection.label} has no such deal.",
            connection_label=connection.label,
            code="invalid_deal_id",
        )
    if not supports_activities(adapter):
        raise ValidationFailed(
            f"{connection.label} keeps no notes or tasks that DealDesk can write.",
            connection_label=connection.label,
            code=NO_ACTIVITIES,
        )
    return adapter


class _Audit:
    """The audit entry of one timeline write."""

    def __init__(
        self,
        user: User,
        connection: Connection,
        deal_id: str,
        action: str,
        changes: list[dict[str, Any]],
        idempotency_key: str,
    ) -> None:
        found = stored_deal(connection, deal_id)
        self.fields: dict[str, Any] = {
            "user": user,
            "connection_slug": connection.slug,
            "connection_label": connection.label,
            "deal_id": deal_id,
            "deal_name": found[0].name if found else "",
            "action": action,
            "changes": changes,
            "idempotency_key": idempotency_key,
        }

    def __call__(self, outcome: str, *, error_message: str = "", request_id: str = "") -> None:
        audit_record(
            **self.fields, outcome=outcome, error_message=error_message, request_id=request_id
        )

    def failed(self, error: ProviderError) -> None:
        if isinstance(error, Unavailable) and error.code in OUTCOME_UNKNOWN_CODES:
            # The request went out: it may have been carried out. Say so, and never retry it.
            error.message = (
                f"{error.message.rstrip('.')}, so DealDesk cannot tell whether it was saved. "
                "Reload the deal to check before you try again."
            )
            error.code = WRITE_OUTCOME_UNKNOWN
        self(AuditEntry.Outcome.FAILED, error_message=error.message, request_id=error.request_id)


def _stored(connection: Connection, activity: Activity, *, deal_id: str) -> Activity:
    activities_save(connection, [activity])
    next_steps_refresh(connection, {deal_id, activity.deal_id or deal_id}, announce=True)
    return activity


def _add(
    *,
    user: User,
    connection_slug: str,
    deal_id: str,
    kind: str,
    subject: str,
    body: str | None,
    due_date: dt.date | None,
    idempotency_key: str,
    changes: list[dict[str, Any]],
) -> Activity | None:
    """None: this form was already submitted once (a double submit), nothing is sent."""
    connection = connection_for_slug(connection_slug)
    audit = _Audit(user, connection, deal_id, f"add_{kind}", changes, idempotency_key)
    try:
        source = _source(connection, deal_id)
    except ProviderError as error:
        audit.failed(error)
        raise
    if audit_succeeded_before(
        connection_slug=connection.slug, deal_id=deal_id, idempotency_key=idempotency_key
    ):
        return None
    try:
        with write_priority():
            activity = source.create_activity(
                deal_id=deal_id,
                kind=kind,
                subject=subject,
                body=body,
                due_date=due_date,
                idempotency_key=idempotency_key,
            )
    except ProviderError as error:
        audit.failed(error)
        raise
    audit(AuditEntry.Outcome.SUCCEEDED, request_id=source.last_request_id)
    return _stored(connection, activity, deal_id=deal_id)


def activity_add_note(
    *,
    user: User,
    connection_slug: str,
    deal_id: str,
    subject: str,
    body: str | None,
    idempotency_key: str,
) -> Activity | None:
    return _add(
        user=user,
        connection_slug=connection_slug,
        deal_id=deal_id,
        kind=NOTE,
        subject=subject,
        body=body,
        due_date=None,
        idempotency_key=idempotency_key,
        changes=[audit_change(field="note", label="Note", old=None, new=subject)],
    )


def activity_add_task(
    *,
    user: User,
    connection_slug: str,
    deal_id: str,
    subject: str,
    due_date: dt.date,
    idempotency_key: str,
) -> Activity | None:
    return _add(
        user=user,
        connection_slug=connection_slug,
        deal_id=deal_id,
        kind=TASK,
        subject=subject,
        body=None,
        due_date=due_date,
        idempotency_key=idempotency_key,
        changes=[
            audit_change(field="task", label="Task", old=None, new=subject),
            audit_change(field="due_date", label="Due date", old=None, new=due_date),
        ],
    )


def activity_complete(
    *,
    user: User,
    connection_slug: str,
    deal_id: str,
    activity_id: str,
    idempotency_key: str,
) -> Activity:
    """Mark one of the deal's stored activities done; one already done sends nothing."""
    connection = connection_for_slug(connection_slug)
    activity = stored_activity(connection, activity_id)
    if activity is None or activity.deal_id != deal_id:
        raise NotFound(
            "That task is not on this deal (any more).",
            connection_label=connection.label,
            code="activity_not_found",
        )
    changes = [
        audit_change(field="task", label=activity.kind_label, old=activity.subject, new="Done")
    ]
    audit = _Audit(user, connection, deal_id, "complete_task", changes, idempotency_key)
    try:
        source = _source(connection, deal_id)
    except ProviderError as error:
        audit.failed(error)
        raise
    if activity.is_done or audit_succeeded_before(
        connection_slug=connection.slug, deal_id=deal_id, idempotency_key=idempotency_key
    ):
        return activity
    try:
        with write_priority():
            done = source.complete_activity(activity, idempotency_key=idempotency_key)
    except NotFound as error:
        activity_mark_deleted(connection, activity.id)  # gone upstream: gone here too
        next_steps_refresh(connection, [deal_id], announce=True)
        audit.failed(error)
        raise
    except ProviderError as error:
        audit.failed(error)
        raise
    audit(AuditEntry.Outcome.SUCCEEDED, request_id=source.last_request_id)
    if done.id != activity.id:
        activity_mark_deleted(connection, activity.id)  # replaced upstream (N-A9 fallback)
    return _stored(connection, done, deal_id=deal_id)
