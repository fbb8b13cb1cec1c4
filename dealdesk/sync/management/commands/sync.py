"""``manage.py sync [--connection SLUG] [--full] [--wait]``: run or force a sync from the shell."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.utils import timezone

from dealdesk.connections.models import Connection
from dealdesk.sync.engine import SyncReport, sync_run, sync_state_for
from dealdesk.sync.tasks import sync_kick

WAIT_LIMIT_SECONDS = 6 * 3600


class Command(BaseCommand):
    help = (
        "Sync the deal store. Without --wait, queue a sync now for the background worker; with "
        "--wait, run it here and return when it is done. --full re-reads everything: it "
        "overwrites stored deals and drops the ones the vendor no longer has."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connection", metavar="SLUG", help="one connection (default: all)")
        parser.add_argument("--full", action="store_true", help="a full, authoritative walk")
        parser.add_argument("--wait", action="store_true", help="run here until done")

    def handle(self, *args: Any, **options: Any) -> None:
        connections = Connection.objects.filter(enabled=True)
        if options["connection"]:
            connections = connections.filter(slug=options["connection"])
            if not connections.exists():
                raise CommandError(f"No enabled connection {options['connection']!r}.")
        failed = False
        for connection in connections:
            if not options["wait"]:
                if options["full"]:
                    state = sync_state_for(connection)
                    state.walk_requested = True
                    state.save(update_fields=["walk_requested"])
                sync_kick(connection)
                self.stdout.write(f"{connection.slug}: sync queued for the worker.")
                continue
            report = sync_until_done(connection, full=options["full"], out=self.stdout)
            failed = failed or bool(report.error)
        if failed:
            raise CommandError("At least one connection failed to sync (see above).")


def _pause_seconds(report: SyncReport) -> float:
    """How long to wait before trying again: a second while another sync holds the lock, else
    until the vendor's reset (a burst limit resets within a second or two), at most 5 s."""
    if report.locked or report.paused_until is None:
        return 1.0
    remaining = (report.paused_until - timezone.now()).total_seconds()
    return min(5.0, max(0.25, remaining))


def sync_until_done(
    connection: Connection, *, full: bool, out: OutputWrapper | None = None
) -> SyncReport:
    """Run ``connection``'s sync until its backfill or walk is complete."""
    started = time.monotonic()
    first = True
    while True:
        report = sync_run(connection, full=full and first, time_limit=None)
        if report.locked or report.paused_until is not None:
            if time.monotonic() - started > WAIT_LIMIT_SECONDS:
                raise CommandError(f"{connection.slug}: gave up waiting for the running sync.")
            time.sleep(_pause_seconds(report))
            continue
        first = False
        if out is not None:
            state = sync_state_for(connection)
            line = (
                f"{connection.slug}: {report.phase or 'nothing to do'}, {report.calls} calls, "
                f"{report.saved} saved, {report.deleted} dropped, {state.deals_stored} stored"
            )
            out.write(line + (f" — failed: {report.error}" if report.error else ""))
        if report.error or report.done:
            return report
        if report.calls == 0:
            time.sleep(5.0)  # the daily share is spent for now: wait for it to accrue
