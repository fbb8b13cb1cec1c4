"""How fresh each connection's slice of the store is, in words a page or the admin shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timesince

from dealdesk.connections.models import Connection
from dealdesk.sync.models import SyncState

# The columns ``sync_health`` reads: pages ask on every view, and a whole row (cursors, lock,
# schedule, a dozen dates to parse) costs several times as much.
HEALTH_FIELDS = (
    "connection_id",
    "state",
    "backfill_done",
    "backfill_count",
    "backfill_total",
    "last_success_at",
    "last_error",
    "last_error_kind",
    "last_error_at",
)


@dataclass(frozen=True)
class SyncHealth:
    connection_slug: str
    connection_label: str
    state: str  # never | backfilling | in_sync | failing
    last_success_at: dt.datetime | None
    lag_seconds: float | None  # since the last successful sync
    deals_so_far: int
    deals_total: int | None
    error: str
    error_kind: str
    alert: str  # "" when pages need say nothing

    @property
    def loading(self) -> bool:
        return self.state in (SyncState.State.NEVER, SyncState.State.BACKFILLING)

    @property
    def alert_kind(self) -> str:
        if self.loading:
            return "loading"
        return self.error_kind or "stale"


def _ago(moment: dt.datetime, now: dt.datetime) -> str:
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return f"{max(1, int(seconds))} s ago"
    return timesince(moment, now, depth=1).replace("\xa0", " ") + " ago"


def lag_alert_seconds() -> int:
    """A quiet team is polled every idle interval: only a sync older than that plus the lag
    threshold means the worker is behind."""
    return settings.DEALDESK_SYNC_IDLE_INTERVAL + settings.DEALDESK_SYNC_LAG_ALERT


def sync_health(connection: Connection, state: SyncState | None = None) -> SyncHealth:
    now = timezone.now()
    if state is None:
        state = SyncState.objects.filter(connection=connection).only(*HEALTH_FIELDS).first()
    label = connection.label
    if state is None:
        state = SyncState(connection=connection)
    lag = (now - state.last_success_at).total_seconds() if state.last_success_at else None
    failing = bool(state.last_error) and (
        state.last_success_at is None
        or (state.last_error_at is not None and state.last_error_at > state.last_success_at)
    )
    alert = ""
    if not state.backfill_done:
        so_far = f"{state.backfill_count:,}"
        of = f" of {state.backfill_total:,}" if state.backfill_total else ""
        alert = f"{label} deals are still loading: {so_far}{of} so far."
        if failing:
            alert += f" {state.last_error}"
    elif failing or (lag is not None and lag > lag_alert_seconds()):
        as_of = _ago(state.last_success_at, now) if state.last_success_at else "an earlier sync"
        reason = state.last_error if failing else f"{label} has not been synced since."
        alert = f"Showing {label} deals as of {as_of}: {reason}"
    return SyncHealth(
        connection_slug=connection.slug,
        connection_label=label,
        state=state.state,
        last_success_at=state.last_success_at,
        lag_seconds=lag,
        deals_so_far=state.backfill_count,
        deals_total=state.backfill_total,
        error=state.last_error if failing else "",
        error_kind=state.last_error_kind if failing else "",
        alert=alert,
    )


def synced_ago(moment: dt.datetime | None) -> str:
    """ "8 s ago" for a deal page's "Synced … ago"."""
    if moment is None:
        return "never"
    return _ago(moment, timezone.now())
