"""The sync engine: keeps one connection's slice of the store fresh within its quota share.

One run (``sync_run``) holds the connection's lease (at most one run per connection, whichever
worker or shell started it) and does, in order:

1. **Reference data** when it was never read, is older than ``DEALDESK_SYNC_REFERENCE_INTERVAL``,
   or a deal names a stage the store does not know.
2. **Backfill** (first time): pages through every deal, most recently updated first, saving each
   page and the adapter's cursor, so a crash or restart continues where it stopped.
3. **Full walk** when asked (``--full``) or due: re-reads everything, overwrites stored deals
   even when the vendor's copy is older, and drops deals the vendor no longer has.
4. **Incremental poll** otherwise: pages "most recently updated first" until a deal is older
   than the high-water mark (deals sharing that timestamp are read again: the overlap).

Every upstream call goes through the transport with ``sync_priority``: at most the configured
share of each rate window, waiting for room instead of failing. A vendor 429 pauses the
connection's sync until the vendor's reset. For a vendor with a daily quota, ``daily_allowance``
spreads the sync's share of it over the day.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.connections.models import Connection
from dealdesk.deals.problems import problem_kind
from dealdesk.providers import adapter_for
from dealdesk.providers.base import (
    AuthenticationFailed,
    Conflict,
    DailyQuota,
    Deal,
    DealQuery,
    NotFound,
    Provider,
    ProviderError,
    RateLimited,
    ReferenceData,
    ValidationFailed,
)
from dealdesk.providers.http import counting_calls, key_fingerprint, sync_priority
from dealdesk.sync.models import ReferenceItem, SyncedDeal, SyncState
from dealdesk.sync.store import (
    deal_mark_deleted,
    deals_save,
    reference_load,
    reference_save,
    store_changed,
)

logger = logging.getLogger("dealdesk.sync")

PAGE_SIZE = 100  # both vendors' maximum
LEASE_SECONDS = 120  # a run renews its lease on every page; a killed worker's lease expires
DEFAULT_SLICE_SECONDS = 20.0  # a background run yields after this; the next run continues
WALK_VERIFY_MAX = 25  # deals a walk did not see are confirmed gone one by one, up to this many
DEFAULT_PAUSE_SECONDS = 60  # after a 429 without a usable reset
REFERENCE_RETRY_FLOOR = 60  # an unknown stage refreshes reference data at most this often
INCREMENTAL_MAX_PAGES = 50


@dataclass
class SyncReport:
    connection_slug: str
    ran: bool = False  # False: another run holds the lease, or the sync is paused
    locked: bool = False
    phase: str = ""  # reference | backfill | walk | incremental
    calls: int = 0
    pages: int = 0
    saved: int = 0
    deleted: int = 0
    done: bool = True  # False: a backfill or walk continues in the next run
    error: str = ""
    paused_until: dt.datetime | None = None
    notes: list[str] = field(default_factory=list)


class _Stop(Exception):
    """The run's time slice or daily allowance is spent; progress is saved."""


# --- The lease ---------------------------------------------------------------------------------


def sync_state_for(connection: Connection) -> SyncState:
    state, _ = SyncState.objects.get_or_create(connection=connection)
    return state


def _acquire(connection: Connection, owner: str) -> bool:
    sync_state_for(connection)
    now = timezone.now()
    taken = (
        SyncState.objects.filter(connection=connection)
        .filter(Q(lock_owner="") | Q(lock_expires_at__lt=now))
        .update(lock_owner=owner, lock_expires_at=now + dt.timedelta(seconds=LEASE_SECONDS))
    )
    return taken == 1


def _renew(state: SyncState, owner: str) -> None:
    state.lock_expires_at = timezone.now() + dt.timedelta(seconds=LEASE_SECONDS)
    SyncState.objects.filter(pk=state.pk, lock_owner=owner).update(
        lock_expires_at=state.lock_expires_at
    )


def _release(connection: Connection, owner: str) -> None:
    SyncState.objects.filter(connection=connection, lock_owner=owner).update(
        lock_owner="", lock_expires_at=None
    )


# --- Quota -------------------------------------------------------------------------------------


def _count_call(state: SyncState, calls: int) -> None:
    today = timezone.now().astimezone(dt.UTC).date()
    if state.calls_day != today:
        state.calls_day, state.calls_today = today, 0
    state.calls_today += calls


def daily_allowance(quota: DailyQuota | None, *, now: float | None = None) -> float | None:
    """How many calls the sync may have spent by now today: its share of the daily quota,
    accrued evenly over the day plus an hour's worth up front. None: no daily quota."""
    if quota is None or quota.limit <= 0:
        return None
    now = time.time() if now is None else now
    share_total = quota.limit * settings.DEALDESK_SYNC_SHARE
    day_start = quota.resets_at - 86400
    elapsed = min(1.0, max(0.0, (now - day_start) / 86400))
    return min(share_total, share_total * elapsed + share_total / 24)


def daily_reserve_reached(quota: DailyQuota | None, *, now: float | None = None) -> bool:
    """True when what is left of the day's quota is only the part kept for people."""
    if quota is None or quota.limit <= 0:
        return False
    now = time.time() if now is None else now
    rest_of_day = min(1.0, max(0.0, (quota.resets_at - now) / 86400))
    people_share = quota.limit * (1 - settings.DEALDESK_SYNC_SHARE) * rest_of_day
    return quota.remaining <= people_share


def seconds_until_allowed(state: SyncState, quota: DailyQuota | None, calls: int = 1) -> float:
    """How long until the sync may spend ``calls`` more calls of its daily share (0: now)."""
    if quota is None:
        return 0.0
    now = time.time()
    if quota.remaining <= 0 and quota.resets_at > now:
        return 0.0  # spent for everyone: the adapter refuses with the vendor's reset, in words
    if daily_reserve_reached(quota, now=now):
        return max(1.0, quota.resets_at - now)
    allowance = daily_allowance(quota, now=now) or 0.0
    spent = state.calls_today if state.calls_day == timezone.now().date() else 0
    missing = spent + calls - allowance
    if missing <= 0:
        return 0.0
    per_second = quota.limit * settings.DEALDESK_SYNC_SHARE / 86400
    return missing / per_second if per_second > 0 else float(DEFAULT_PAUSE_SECONDS)


# --- One run -----------------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        connection: Connection,
        state: SyncState,
        adapter: Provider,
        owner: str,
        deadline: float | None,
    ) -> None:
        self.connection = connection
        self.state = state
        self.adapter = adapter
        self.owner = owner
        self.deadline = deadline
        self.report = SyncReport(connection.slug, ran=True)
        self.ref: ReferenceData | None = None

    # budget and time

    def check_budget(self, calls: int = 1) -> None:
        past_deadline = self.deadline is not None and time.monotonic() > self.deadline
        if past_deadline and self.report.pages > 0:  # every run makes some progress
            raise _Stop("time slice spent")
        wait = seconds_until_allowed(self.state, self.adapter.daily_quota(), calls)
        if wait > 0:
            self.report.notes.append(f"daily share spent; next call allowed in {int(wait)} s")
            raise _Stop("daily share spent")

    def spend(self, calls: int) -> None:
        _count_call(self.state, calls)
        self.report.calls += calls
        _renew(self.state, self.owner)

    # reference data

    def reference(self, *, force: bool = False) -> ReferenceData:
        stored = reference_load(self.connection)
        due = stored is None or force or self._reference_due()
        if not due and stored is not None:
            self.ref = stored
            return stored
        self.check_budget(max(1, self.state.reference_calls))
        self.report.phase = "reference"
        with counting_calls() as tally:
            try:
                fresh = self.adapter.reference_data()
            finally:
                self.spend(tally.calls)
        reference_save(self.connection, fresh)
        self.state.reference_synced_at = timezone.now()
        self.state.reference_calls = tally.calls
        self.ref = fresh
        return fresh

    def _reference_due(self) -> bool:
        synced = self.state.reference_synced_at
        interval = settings.DEALDESK_SYNC_REFERENCE_INTERVAL
        return synced is None or timezone.now() - synced > dt.timedelta(seconds=interval)

    def refresh_for_unknown(self, deals: list[Deal]) -> None:
        """A deal in a stage, or linked to a contact, company, site or person, that the stored
        reference data does not know: read the reference data again at once. Each unknown id
        triggers that at most once per floor (a stage the stage list never shows, or a contact
        deleted upstream, is not read again on every page)."""
        assert self.ref is not None
        ref = self.ref
        stages = {
            d.stage.id
            for d in deals
            if d.stage is not None and d.stage.id is not None and ref.stage(d.stage.id) is None
        }
        names = {
            link.id
            for d in deals
            for link in (d.contact, d.company, d.site, d.owner)
            if link is not None and link.id and link.missing and link.id not in ref.names
        }
        floors = [(stage, REFERENCE_RETRY_FLOOR) for stage in sorted(stages)]
        floors += [(name, settings.DEALDESK_SYNC_REFERENCE_INTERVAL) for name in sorted(names)]
        first_time = [
            object_id
            for object_id, floor in floors
            if cache.add(f"dealdesk:sync:{self.connection.pk}:unknown:{object_id}", True, floor)
        ]
        if first_time:
            self.reference(force=True)
            raise _Restart()

    # pages

    def page(self, cursor: str | None) -> tuple[list[Deal], str | None, int | None]:
        self.check_budget()
        assert self.ref is not None
        with counting_calls() as tally:
            try:
                page = self.adapter.list_deals(
                    DealQuery(sort="-updated_at"), ref=self.ref, cursor=cursor, limit=PAGE_SIZE
                )
            finally:
                self.spend(tally.calls)
        self.report.pages += 1
        return list(page.deals), page.next_cursor, page.total


class _Restart(Exception):
    """Reference data changed mid-page: parse the page again with it."""


def sync_run(
    connection: Connection,
    *,
    full: bool = False,
    time_limit: float | None = DEFAULT_SLICE_SECONDS,
) -> SyncReport:
    """One run for ``connection``; see the module docstring. Never raises ``ProviderError``:
    a failure is recorded on the connection's ``SyncState`` and in the report."""
    owner = uuid.uuid4().hex
    if not _acquire(connection, owner):
        return SyncReport(connection.slug, locked=True, done=False)
    try:
        return _run_locked(connection, owner, full=full, time_limit=time_limit)
    finally:
        _release(connection, owner)


def _run_locked(
    connection: Connection, owner: str, *, full: bool, time_limit: float | None
) -> SyncReport:
    state = SyncState.objects.get(connection=connection)
    now = timezone.now()
    if state.paused_until and state.paused_until > now:
        return SyncReport(connection.slug, done=False, paused_until=state.paused_until)
    if full:
        state.walk_requested = True
    state.last_attempt_at = now
    try:
        adapter = adapter_for(connection.info())
    except UndecryptableSecret:
        error = AuthenticationFailed(
            f"cannot decrypt the stored key of {connection.label}; an admin must enter it again.",
            connection_label=connection.label,
            code="undecryptable_key",
        )
        return _failed(state, SyncReport(connection.slug, ran=True), error)
    _forget_another_account(connection, state)
    deadline = time.monotonic() + time_limit if time_limit else None
    run = _Run(connection, state, adapter, owner, deadline)
    try:
        with sync_priority():
            for _attempt in range(3):
                try:
                    _steps(run)
                    break
                except _Restart:
                    continue
    except _Stop:
        run.report.done = False
    except ProviderError as error:
        return _failed(state, run.report, error)
    state.last_success_at = timezone.now()
    state.state = SyncState.State.IN_SYNC if state.backfill_done else SyncState.State.BACKFILLING
    state.last_error = ""
    state.last_error_kind = ""
    state.deals_stored = SyncedDeal.objects.filter(connection=connection, deleted=False).count()
    state.save()
    return run.report


def _forget_another_account(connection: Connection, state: SyncState) -> None:
    """Deals stored from another base URL or key are not this account's: start afresh."""
    info = connection.info()
    fingerprint = key_fingerprint(f"{info.base_url}|{info.api_key}")
    if state.account_fingerprint == fingerprint:
        return
    if state.account_fingerprint:
        with transaction.atomic():
            SyncedDeal.objects.filter(connection=connection).delete()
            ReferenceItem.objects.filter(connection=connection).delete()
            store_changed()
        state.backfill_cursor = state.walk_cursor = ""
        state.backfill_done = False
        state.backfill_count = 0
        state.backfill_total = None
        state.backfill_started_at = None
        state.high_water = None
        state.walk_started_at = None
        state.last_walk_at = None
        state.reference_synced_at = None
        state.state = SyncState.State.NEVER
    state.account_fingerprint = fingerprint
    state.save()


def _steps(run: _Run) -> None:
    state = run.state
    run.reference(force=state.walk_requested)  # a full resync reads everything again
    if not state.backfill_done:
        _backfill(run)  # reads everything: nothing else to do in this run
    elif state.walk_requested or state.walk_started_at or _walk_due(state):
        _walk(run)
    else:
        _incremental(run)


def _walk_due(state: SyncState) -> bool:
    if state.last_walk_at is None:
        return False  # the backfill was the first walk
    interval = dt.timedelta(seconds=settings.DEALDESK_SYNC_FULL_WALK_INTERVAL)
    return timezone.now() - state.last_walk_at > interval


def _backfill(run: _Run) -> None:
    state = run.state
    run.report.phase = "backfill"
    if state.backfill_started_at is None:
        state.backfill_started_at = timezone.now()
        state.state = SyncState.State.BACKFILLING
        state.save()
    while True:
        deals, next_cursor, total = run.page(state.backfill_cursor or None)
        run.refresh_for_unknown(deals)
        with transaction.atomic():
            run.report.saved += deals_save(
                run.connection, deals, walk_started_at=state.backfill_started_at
            )
            state.backfill_count += len(deals)
            state.backfill_total = total if total is not None else state.backfill_total
            _raise_high_water(state, deals)
            state.backfill_cursor = next_cursor or ""
            if not next_cursor:
                state.backfill_done = True
                state.walk_requested = False  # the backfill read everything
                state.last_walk_at = state.backfill_started_at
                state.state = SyncState.State.IN_SYNC
            state.save()
        if not next_cursor:
            return


def _raise_high_water(state: SyncState, deals: list[Deal]) -> None:
    newest = max((d.updated_at for d in deals if d.updated_at), default=None)
    if newest and (state.high_water is None or newest > state.high_water):
        state.high_water = newest


def _incremental(run: _Run) -> None:
    """Most recently updated first, down to the high-water mark (inclusive: the overlap)."""
    state = run.state
    run.report.phase = "incremental"
    mark = state.high_water
    cursor: str | None = None
    for _ in range(INCREMENTAL_MAX_PAGES):
        deals, cursor, _total = run.page(cursor)
        run.refresh_for_unknown(deals)
        fresh = [d for d in deals if mark is None or d.updated_at is None or d.updated_at >= mark]
        with transaction.atomic():
            run.report.saved += deals_save(run.connection, fresh)
            _raise_high_water(state, fresh)
            state.save()
        reached_mark = len(fresh) < len(deals)
        if reached_mark or not cursor:
            return
    # More changed since the last poll than a run reads: a full walk catches up.
    state.walk_requested = True
    state.save()


def _walk(run: _Run) -> None:
    state = run.state
    run.report.phase = "walk"
    if state.walk_started_at is None:
        state.walk_started_at = timezone.now()
        state.walk_cursor = ""
        state.save()
    while True:
        deals, next_cursor, _total = run.page(state.walk_cursor or None)
        run.refresh_for_unknown(deals)
        with transaction.atomic():
            run.report.saved += deals_save(
                run.connection, deals, authoritative=True, walk_started_at=state.walk_started_at
            )
            _raise_high_water(state, deals)
            state.walk_cursor = next_cursor or ""
            state.save()
        if not next_cursor:
            break
    _drop_unseen(run)
    state.last_walk_at = state.walk_started_at
    state.walk_started_at = None
    state.walk_requested = False
    state.walk_cursor = ""
    state.save()


def _drop_unseen(run: _Run) -> None:
    """Deals the walk did not see are gone upstream. A deal deleted mid-walk shifts the pages
    under it, so a few unseen ones are confirmed one by one before they go."""
    state = run.state
    unseen = SyncedDeal.objects.filter(connection=run.connection, deleted=False).exclude(
        walk_seen_at=state.walk_started_at
    )
    unseen = unseen.filter(synced_at__lt=state.walk_started_at)
    ids = list(unseen.values_list("upstream_id", flat=True)[: WALK_VERIFY_MAX + 1])
    if len(ids) > WALK_VERIFY_MAX:
        with transaction.atomic():
            dropped = unseen.update(deleted=True, synced_at=timezone.now())
            if dropped:
                store_changed()
        run.report.deleted += dropped
        return
    assert run.ref is not None
    for deal_id in ids:
        run.check_budget()
        with counting_calls() as tally:
            try:
                deal = run.adapter.get_deal(deal_id, ref=run.ref)
            except NotFound:
                deal_mark_deleted(run.connection, deal_id)
                run.report.deleted += 1
                continue
            finally:
                run.spend(tally.calls)
        deals_save(
            run.connection, [deal], authoritative=True, walk_started_at=state.walk_started_at
        )


# --- Failures ----------------------------------------------------------------------------------


def _read_words(error: ProviderError, label: str) -> str:
    """What the sync's failed read means, in words. An adapter words a 409 or 422 for a person
    who was changing something; the sync only read, so it says that instead."""
    if isinstance(error, Conflict | ValidationFailed):
        status = f" (HTTP {error.status})" if error.status else ""
        return f"{label} refused DealDesk's read{status}; the sync tries again shortly."
    return error.message


def _failed(state: SyncState, report: SyncReport, error: ProviderError) -> SyncReport:
    now = timezone.now()
    error.message = _read_words(error, state.connection.label)
    report.error = error.message
    report.done = False
    state.last_error = error.message[:500]
    state.last_error_kind = _error_kind(error)
    state.last_error_at = now
    if isinstance(error, RateLimited) and error.code != "client_rate_budget":
        wait = error.retry_after if error.retry_after else DEFAULT_PAUSE_SECONDS
        state.paused_until = now + dt.timedelta(seconds=max(1.0, min(wait, 86400)))
        report.paused_until = state.paused_until
    if not (isinstance(error, RateLimited)):
        state.state = SyncState.State.FAILING
    state.save()
    logger.warning("sync of %s failed: %s", state.connection.slug, error.message)
    return report


def _error_kind(error: ProviderError) -> str:
    return problem_kind(error)
