"""Activities in the synced store, and each deal's next step computed from them.

Filled by the sync engine and the activity writes, always from the adapters' ``Activity``
dataclasses. A deal's next step (its open, not-a-note activity due first; one without a due date
after every dated one) is denormalised onto ``SyncedDeal`` so lists and boards read it, and
filter on it, without touching activities.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection as db_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from dealdesk.connections.models import Connection
from dealdesk.providers.base import NOTE, Activity
from dealdesk.sync.live import own_changes_note
from dealdesk.sync.models import (
    NEXT_STEP_FIELDS,
    DealChange,
    NextStepState,
    SyncedActivity,
    SyncedDeal,
)
from dealdesk.sync.store import store_changed

MAX_SUBJECT = 500
NEXT_STEP_SUBJECT = 300


def activity_from_row(row: SyncedActivity) -> Activity:
    return Activity(
        id=row.upstream_id,
        deal_id=row.deal_id or None,
        kind=row.kind,
        subject=row.subject,
        body=row.body or None,
        is_done=row.is_done,
        due_date=row.due_date,
        completed_at=row.completed_at,
        created_at=row.upstream_created_at,
        updated_at=row.upstream_updated_at,
    )


def _row_fields(activity: Activity, now: dt.datetime) -> dict[str, object]:
    return {
        "deal_id": (activity.deal_id or "")[:100],
        "kind": activity.kind[:20],
        "subject": activity.subject[:MAX_SUBJECT],
        "body": activity.body or "",
        "is_done": activity.is_done,
        "due_date": activity.due_date,
        "completed_at": activity.completed_at,
        "upstream_created_at": activity.created_at,
        "upstream_updated_at": activity.updated_at,
        "synced_at": now,
        "deleted": False,
    }


def activities_save(
    connection: Connection,
    activities: Iterable[Activity],
    *,
    walk_started_at: dt.datetime | None = None,
) -> set[str]:
    """Upsert ``activities``; an answer older than the stored one is ignored. Returns the ids
    of the deals whose activities changed (their next step may have)."""
    activities = [a for a in activities if a.id]
    if not activities:
        return set()
    now = timezone.now()
    touched: set[str] = set()
    with transaction.atomic():
        stored = {
            row.upstream_id: row
            for row in SyncedActivity.objects.filter(
                connection=connection, upstream_id__in=[a.id for a in activities]
            )
        }
        for activity in activities:
            row = stored.get(activity.id)
            fields = _row_fields(activity, now)
            if walk_started_at is not None:
                fields["walk_seen_at"] = walk_started_at
            if row is None:
                row = SyncedActivity(connection=connection, upstream_id=activity.id, **fields)
                row.save()
                stored[activity.id] = row
            else:
                older = (
                    activity.updated_at is not None
                    and row.upstream_updated_at is not None
                    and activity.updated_at < row.upstream_updated_at
                )
                if older and not row.deleted:
                    if walk_started_at is not None:
                        SyncedActivity.objects.filter(pk=row.pk).update(
                            walk_seen_at=walk_started_at
                        )
                    continue
                if row.deal_id and row.deal_id != activity.deal_id:
                    touched.add(row.deal_id)  # moved to another deal
                SyncedActivity.objects.filter(pk=row.pk).update(**fields)
            if activity.deal_id:
                touched.add(activity.deal_id)
    return touched


def activities_drop_unseen(connection: Connection, walk_started_at: dt.datetime) -> set[str]:
    """After a walk of every activity: the ones it did not see are gone upstream."""
    unseen = SyncedActivity.objects.filter(
        connection=connection, deleted=False, synced_at__lt=walk_started_at
    ).exclude(walk_seen_at=walk_started_at)
    deal_ids = set(unseen.exclude(deal_id="").values_list("deal_id", flat=True))
    unseen.update(deleted=True, synced_at=timezone.now())
    return deal_ids


def deal_activities(connection_slug: str, deal_id: str) -> list[Activity]:
    """The deal's stored activities, newest first."""
    rows = SyncedActivity.objects.filter(
        connection__slug=connection_slug, deal_id=deal_id, deleted=False
    ).order_by(F("upstream_created_at").desc(nulls_last=True), "-pk")
    return [activity_from_row(row) for row in rows]


def stored_activity(connection: Connection, activity_id: str) -> Activity | None:
    row = SyncedActivity.objects.filter(
        connection=connection, upstream_id=activity_id[:100], deleted=False
    ).first()
    return activity_from_row(row) if row is not None else None


def activity_mark_deleted(connection: Connection, activity_id: str) -> None:
    SyncedActivity.objects.filter(connection=connection, upstream_id=activity_id).update(
        deleted=True, synced_at=timezone.now()
    )


def next_steps_refresh(
    connection: Connection, deal_ids: Iterable[str] | None = None, *, announce: bool = False
) -> int:
    """Recompute the next step of ``deal_ids`` (every deal of the connection when None) from the
    stored activities: one query over the open activities, one over the deals' current next
    step, and writes only for the deals whose next step changed. Returns how many changed.

    Open pages redraw the deals whose next step changed; with ``announce``, every deal of
    ``deal_ids`` (its timeline changed even when its next step did not)."""
    ids = None if deal_ids is None else sorted(set(deal_ids))
    if ids == []:
        return 0
    steps = SyncedActivity.objects.filter(
        connection=connection, deleted=False, is_done=False
    ).exclude(kind=NOTE)
    deals = SyncedDeal.objects.filter(connection=connection, deleted=False)
    if ids is not None:
        steps = steps.filter(deal_id__in=ids)
        deals = deals.filter(upstream_id__in=ids)
    wanted: dict[str, tuple[str, dt.date | None, str, str]] = {}
    ordered = steps.order_by(
        "deal_id", F("due_date").asc(nulls_last=True), "upstream_created_at", "pk"
    ).values_list("deal_id", "due_date", "subject", "kind")
    for deal_id, due, subject, kind in ordered:
        if deal_id not in wanted:
            wanted[deal_id] = (NextStepState.PLANNED, due, subject[:NEXT_STEP_SUBJECT], kind)
    none = (NextStepState.NONE, None, "", "")
    current = deals.values_list(
        "pk",
        "upstream_id",
        "next_step_state",
        "next_step_due",
        "next_step_subject",
        "next_step_kind",
    )
    changed: list[tuple[int, str, tuple[str, dt.date | None, str, str]]] = []
    for pk, upstream_id, state, due, subject, kind in current.iterator(chunk_size=2000):
        target = wanted.get(upstream_id, none)
        if (state, due, subject, kind) != target:
            changed.append((pk, upstream_id, target))
    redraw = {upstream_id for _pk, upstream_id, _target in changed}
    if announce and ids is not None:
        redraw.update(ids)
    if not redraw:
        return 0
    now = timezone.now()
    with transaction.atomic():
        _write_next_steps([(pk, target) for pk, _upstream_id, target in changed])
        changes = DealChange.objects.bulk_create(  # what open pages follow (sync/live.py)
            [
                DealChange(connection=connection, upstream_id=deal_id, changed_at=now)
                for deal_id in sorted(redraw)
            ],
            batch_size=500,
        )
        if changed:
            store_changed()  # cached list figures and ids (the "No next step" filter) are stale
        own_changes_note(changes)
    return len(changed)


def _write_next_steps(rows: list[tuple[int, tuple[str, dt.date | None, str, str]]]) -> None:
    """One parameterised UPDATE per row, sent as a batch (``executemany``). ``bulk_update``
    builds a CASE per row and field, which costs minutes on the 10,000 deals a first walk
    computes; this costs a second."""
    if not rows:
        return
    quote = db_connection.ops.quote_name
    # The fields' own names are their columns (no db_column on SyncedDeal).
    assignments = ", ".join(f"{quote(name)} = %s" for name in NEXT_STEP_FIELDS)
    table = quote(SyncedDeal._meta.db_table)
    sql = f"UPDATE {table} SET {assignments} WHERE {quote('id')} = %s"  # noqa: S608
    adapt = db_connection.ops.adapt_datefield_value
    params = [(state, adapt(due), subject, kind, pk) for pk, (state, due, subject, kind) in rows]
    with db_connection.cursor() as cursor:
        cursor.executemany(sql, params)
