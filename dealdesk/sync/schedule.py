"""When each connection syncs next: often while the team is active, rarely otherwise.

Each connection has one *chain* of scheduled runs on the task queue. A run schedules the next one
with the delay ``next_delay`` picks. Starting a new chain (``sync_kick``: a page view after a quiet
spell, an admin's "Resync now", a new connection) gives it a new token, and a task of an older
chain that wakes up later sees another token and stops, so chains never multiply. The watchdog
(every minute) restarts a chain whose next run is long overdue (a worker that died).
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.utils import timezone

from dealdesk.connections.models import Connection
from dealdesk.providers.base import DailyQuota
from dealdesk.sync.engine import SyncReport, seconds_until_allowed, sync_state_for
from dealdesk.sync.models import SyncState, TeamActivity
from dealdesk.sync.webhooks import WEBHOOK_POLL_FACTOR, webhook_is_on

ACTIVITY_WRITE_EVERY = 30  # seconds between two writes of TeamActivity by one process
CONTINUE_DELAY = 0.2  # a backfill or walk that yielded continues almost at once
LOCKED_DELAY = 5.0  # another run held the lease: look again shortly
OVERDUE = dt.timedelta(seconds=120)

_last_written: float = 0.0


def team_is_active(now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    row = TeamActivity.objects.filter(pk=1).first()
    window = dt.timedelta(seconds=settings.DEALDESK_SYNC_ACTIVE_WINDOW)
    return bool(row and now - row.last_seen_at < window)


def activity_seen() -> bool:
    """Record that someone is using DealDesk. True when the team was idle until now (the
    caller then starts the sync chains so polling speeds up at once)."""
    global _last_written
    import time

    if time.monotonic() - _last_written < ACTIVITY_WRITE_EVERY:
        return False
    _last_written = time.monotonic()
    now = timezone.now()
    was_active = team_is_active(now)
    TeamActivity.objects.update_or_create(pk=1, defaults={"last_seen_at": now})
    return not was_active


def next_delay(report: SyncReport, state: SyncState, quota: DailyQuota | None) -> float:
    """Seconds until the connection's next run."""
    if report.locked:
        return LOCKED_DELAY
    if report.paused_until is not None:
        return max(1.0, (report.paused_until - timezone.now()).total_seconds())
    interval: float = (
        settings.DEALDESK_SYNC_ACTIVE_INTERVAL
        if team_is_active()
        else settings.DEALDESK_SYNC_IDLE_INTERVAL
    )
    if webhook_is_on(state.connection):
        # Slower, never stopped (it catches lost deliveries), and never slower than when idle.
        slowed = interval * WEBHOOK_POLL_FACTOR
        interval = max(interval, min(slowed, settings.DEALDESK_SYNC_IDLE_INTERVAL))
    if not report.done and not report.error:
        interval = CONTINUE_DELAY
    if report.error:
        interval = max(interval, settings.DEALDESK_SYNC_ACTIVE_INTERVAL * 6)
    return max(interval, seconds_until_allowed(state, quota))


def chain_start(connection: Connection, delay: float = 0.0) -> str:
    """A new chain for ``connection``; returns its token (the caller enqueues the task)."""
    token = uuid.uuid4().hex
    state = sync_state_for(connection)
    SyncState.objects.filter(pk=state.pk).update(
        chain_token=token, next_run_at=timezone.now() + dt.timedelta(seconds=delay)
    )
    return token


def chain_continue(connection: Connection, token: str, delay: float) -> bool:
    """Book the chain's next run; False when a newer chain replaced this one."""
    booked = SyncState.objects.filter(connection=connection, chain_token=token).update(
        next_run_at=timezone.now() + dt.timedelta(seconds=delay)
    )
    return booked == 1


def chain_is_current(connection: Connection, token: str) -> bool:
    return SyncState.objects.filter(connection=connection, chain_token=token).exists()


def overdue_connections() -> list[Connection]:
    """Enabled connections whose chain has no run booked, or one long overdue."""
    limit = timezone.now() - OVERDUE
    result = []
    for connection in Connection.objects.filter(enabled=True):
        state = SyncState.objects.filter(connection=connection).first()
        if state is None or state.next_run_at is None or state.next_run_at < limit:
            result.append(connection)
    return result
