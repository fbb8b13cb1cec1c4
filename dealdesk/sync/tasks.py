"""The sync's tasks on the huey queue (``manage.py run_huey`` runs them)."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from dealdesk.connections.models import Connection
from dealdesk.providers import adapter_for
from dealdesk.sync.engine import sync_run, sync_state_for
from dealdesk.sync.schedule import (
    chain_continue,
    chain_is_current,
    chain_start,
    next_delay,
    overdue_connections,
)

logger = logging.getLogger("dealdesk.sync")


@db_task()
def sync_connection_task(connection_id: int, token: str) -> None:
    """One run of a connection's chain, then the next one booked."""
    connection = Connection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None or not chain_is_current(connection, token):
        return  # switched off, deleted, or a newer chain took over
    report = sync_run(connection)
    state = sync_state_for(connection)
    try:
        quota = adapter_for(connection.info()).daily_quota()
    except Exception:  # an undecryptable key: the report already says so
        quota = None
    delay = next_delay(report, state, quota)
    if chain_continue(connection, token, delay):
        sync_connection_task.schedule(args=(connection_id, token), delay=delay)


def sync_kick(connection: Connection, *, delay: float = 0.0) -> None:
    """Start a new chain for ``connection`` (an older one stops at its next wake-up)."""
    token = chain_start(connection, delay)
    if delay > 0:
        sync_connection_task.schedule(args=(connection.pk, token), delay=delay)
    else:
        sync_connection_task(connection.pk, token)


def sync_kick_all() -> None:
    for connection in Connection.objects.filter(enabled=True):
        sync_kick(connection)


@db_periodic_task(crontab(minute="*"))
def sync_watchdog() -> None:
    """Restart chains that stopped (a killed worker, a queue that was flushed)."""
    for connection in overdue_connections():
        logger.info("sync chain of %s restarted", connection.slug)
        sync_kick(connection)


@db_periodic_task(crontab(minute="17"))
def live_and_webhook_prune() -> None:
    """Forget old change-feed rows and webhook event ids (hourly; both tables stay small)."""
    from dealdesk.sync.live import live_prune
    from dealdesk.sync.webhooks import webhook_events_prune

    live_prune()
    webhook_events_prune()
