"""The deal service: the only functions views call (see docs/service-api.md).

Reads come from the synced store (``selectors.py``, ``dealdesk/sync/``) and make no upstream
call. Every write re-reads the deal upstream, refuses a change to a field that changed upstream
since the user saw it, sends only what changed, puts the vendor's answer into the store at once
and leaves an audit entry (``audit.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.core.validators import slug_re
from django.db import IntegrityError

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.connections.models import Connection
from dealdesk.connections.services import connection_get, connection_list
from dealdesk.deals import selectors
from dealdesk.deals.audit import (
    audit_change,
    audit_created_before,
    audit_history,
    audit_record,
    audit_succeeded_before,
)
from dealdesk.deals.contact_links import DealContacts, deal_contacts
from dealdesk.deals.listing import DealFilters, SourceError
from dealdesk.deals.models import AuditEntry
from dealdesk.deals.reference import (
    reference_get,
    reference_refresh_for_unknown_stage,
    reference_unknown_stage,
)
from dealdesk.deals.selectors import (
    DealListResult,
    LookupOption,
    SourceOption,
    deal_keys,
    lookup_options,
    source_option,
)
from dealdesk.listtools.selectors import owner_links_for
from dealdesk.providers import adapter_for
from dealdesk.providers.base import (
    LOST,
    OPEN,
    WON,
    WRITE_OUTCOME_UNKNOWN,
    AuthenticationFailed,
    Conflict,
    Deal,
    DealActions,
    EditableField,
    Money,
    NotFound,
    Provider,
    ProviderError,
    ReferenceData,
    Unavailable,
    ValidationFailed,
    humanise,
)
from dealdesk.providers.http import write_priority
from dealdesk.providers.registry import deal_id_is_valid
from dealdesk.sync.models import SyncState
from dealdesk.sync.store import deal_mark_deleted, deal_save, stored_deal

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

__all__ = [
    "DealDetail",
    "DealFilters",
    "DealListResult",
    "NewDeal",
    "SourceError",
    "SourceOption",
    "UnknownConnection",
    "deal_change_stage",
    "deal_create",
    "deal_create_form",
    "deal_get",
    "deal_history",
    "deal_keys",
    "deal_list",
    "deal_mark_lost",
    "deal_mark_won",
    "deal_refresh",
    "deal_reopen",
    "deal_update",
    "lookup_search",
    "source_options",
]

logger = logging.getLogger("dealdesk.deals")

MAX_PAGE_SIZE = 100
# A write that timed out, or whose answer could not be read, may have been carried out upstream.
OUTCOME_UNKNOWN_CODES = ("timeout", "malformed_response")


class UnknownConnection(NotFound):
    default_message = "There is no such connection."


@dataclass
class DealDetail:
    deal: Deal
    fields: list[EditableField]  # in display order
    actions: DealActions
    history: list[AuditEntry]  # newest first
    connection: SourceOption
    synced_at: dt.datetime | None = None  # when the store last had it from upstream
    # The contact, company or site, vendor links and named line items, from the store.
    contacts: DealContacts = field(default_factory=DealContacts)


# --- Connections ---------------------------------------------------------------------------


def source_options() -> list[SourceOption]:
    return [source_option(c) for c in connection_list(enabled_only=True)]


def connection_for_slug(slug: str) -> Connection:
    """The enabled connection ``slug``; ``UnknownConnection`` when missing or switched off."""
    try:
        connection = connection_get(slug=slug)
    except Connection.DoesNotExist:
        raise UnknownConnection(
            f"There is no connection {slug!r}.", code="unknown_connection"
        ) from None
    if not connection.enabled:
        raise UnknownConnection(f"The connection {slug!r} is switched off.", code="disabled")
    return connection


class BadDealReference(ValueError):
    """A posted source or deal id that cannot be one (a crafted or broken form): nothing is sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def deal_reference_validate(*, connection_slug: str, deal_id: str) -> None:
    """Check the shape of a deal named by a form (bulk rows, board moves) before it reaches a URL.

    Raises ``BadDealReference``. An unknown or switched-off connection is left to the write,
    which reports it as that deal's failure."""
    if not slug_re.fullmatch(connection_slug or ""):
        raise BadDealReference(f"“{connection_slug[:60]}” is not a source DealDesk knows.")
    try:
        connection = connection_get(slug=connection_slug)
    except Connection.DoesNotExist:
        return
    if not deal_id_is_valid(connection.provider, deal_id or ""):
        raise BadDealReference(f"“{deal_id[:60]}” is not a {connection.label} deal id.")


def _undecryptable_message(connection: Connection) -> str:
    return f"cannot decrypt the stored key of {connection.label}; an admin must enter it again."


def adapter_for_connection(connection: Connection) -> Provider:
    """The connection's adapter; a key that cannot be decrypted is ``AuthenticationFailed``."""
    try:
        return adapter_for(connection.info())
    except UndecryptableSecret:
        raise AuthenticationFailed(
            _undecryptable_message(connection),
            connection_label=connection.label,
            code="undecryptable_key",
        ) from None


# --- Reads ---------------------------------------------------------------------------------


def deal_list(
    *, filters: DealFilters, page: int = 1, page_size: int = 25, user: Any = None
) -> DealListResult:
    """One page of the filtered list, from the store: no upstream call. ``user`` is who "My
    deals" means."""
    return selectors.deal_list(
        filters=filters, page=page, page_size=page_size, owner_keys=owner_links_for(user)
    )


def money_totals(deals: list[Deal]) -> list[Money]:
    """The deals' values summed per currency, currencies in order; deals without one skipped."""
    sums: dict[str, Decimal] = {}
    for deal in deals:
        if deal.value is not None:
            sums[deal.value.currency] = (
                sums.get(deal.value.currency, Decimal(0)) + deal.value.amount
            )
    return [Money(amount, currency) for currency, amount in sorted(sums.items())]


def deal_get(*, connection_slug: str, deal_id: str, need: tuple[str, ...] = ()) -> DealDetail:
    """The deal from the store: no upstream call. It is read live once (and stored) only while
    the connection's first backfill has not reached it yet, or when a field in ``need`` (one
    about to be edited) was never carried by the vendor's answers the store has seen."""
    connection = connection_for_slug(connection_slug)
    adapter = adapter_for_connection(connection)
    _require_deal_id(connection, adapter, deal_id)
    found = stored_deal(connection, deal_id)
    if found is None:
        if _backfill_done(connection):
            raise NotFound("Not found.", connection_label=connection.label, code="not_in_store")
        return deal_refresh(connection_slug=connection_slug, deal_id=deal_id)
    deal, row = found
    if any(name in deal.absent for name in need):
        return deal_refresh(connection_slug=connection_slug, deal_id=deal_id)
    return _detail(connection, adapter, deal, reference_get(adapter=adapter), row.synced_at)


def deal_refresh(*, connection_slug: str, deal_id: str) -> DealDetail:
    """Read the deal live (one call with cached reference data) and update the store."""
    connection = connection_for_slug(connection_slug)
    adapter = adapter_for_connection(connection)
    _require_deal_id(connection, adapter, deal_id)
    try:
        deal, ref = _fetch_deal(adapter, deal_id, reference_get(adapter=adapter))
    except NotFound:
        deal_mark_deleted(connection, deal_id)
        raise
    deal_save(connection, deal, authoritative=True)
    return _detail(connection, adapter, deal, ref, dt.datetime.now(dt.UTC))


def _backfill_done(connection: Connection) -> bool:
    return SyncState.objects.filter(connection=connection, backfill_done=True).exists()


def _require_deal_id(connection: Connection, adapter: Provider, deal_id: str) -> None:
    """An id that cannot be the vendor's is not found, before anything is sent upstream."""
    if not adapter.is_deal_id(deal_id):
        raise NotFound(
            f"{connection.label} has no such deal.",
            connection_label=connection.label,
            code="invalid_deal_id",
        )


def deal_history(*, connection_slug: str, deal_id: str) -> list[AuditEntry]:
    return audit_history(connection_slug=connection_slug, deal_id=deal_id)


def _fetch_deal(adapter: Provider, deal_id: str, ref: ReferenceData) -> tuple[Deal, ReferenceData]:
    deal = adapter.get_deal(deal_id, ref=ref)
    unknown_stage = reference_unknown_stage(ref, [deal])
    if unknown_stage:
        fresh = reference_refresh_for_unknown_stage(adapter=adapter, stage_id=unknown_stage)
        if fresh is not None:
            ref = fresh
            deal = adapter.get_deal(deal_id, ref=ref)
    return deal, ref


def _detail(
    connection: Connection,
    adapter: Provider,
    deal: Deal,
    ref: ReferenceData,
    synced_at: dt.datetime | None = None,
) -> DealDetail:
    return DealDetail(
        deal=deal,
        fields=adapter.editable_fields(deal, ref=ref),
        actions=adapter.actions(deal, ref=ref),
        history=deal_history(connection_slug=connection.slug, deal_id=deal.id),
        connection=source_option(connection),
        synced_at=synced_at,
        contacts=deal_contacts(deal, ref, adapter.deal_links(deal, ref=ref)),
    )


# --- Writes --------------------------------------------------------------------------------


@dataclass
class _WritePlan:
    """What one write would do to the fresh deal: audit rows, conflicts, and the upstream call
    (``None`` when nothing differs from the current values, so nothing is sent)."""

    changes: list[dict[str, Any]]
    conflicts: tuple[str, ...] = ()
    send: Callable[[], Deal] | None = None


Planner = Callable[[Provider, Deal, ReferenceData], _WritePlan]


def deal_update(
    *,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    deal_id: str,
    changes: dict[str, Any],
    seen_updated_at: dt.datetime | str | None,
    idempotency_key: str,
    originals: dict[str, Any] | None = None,
) -> DealDetail:
    """A partial update of exactly the fields whose new value differs from the current one."""

    def plan(adapter: Provider, deal: Deal, ref: ReferenceData) -> _WritePlan:
        fields = {f.name: f for f in adapter.editable_fields(deal, ref=ref)}
        unknown = [name for name in changes if name not in fields]
        if unknown:
            raise ValidationFailed(
                "This deal has no editable field " + ", ".join(sorted(unknown)) + ".",
                field_errors={name: ["This field cannot be edited here."] for name in unknown},
            )
        to_send = {
            name: value for name, value in changes.items() if not _same(value, fields[name].value)
        }
        seen = _parse_seen(seen_updated_at)
        conflicts = tuple(
            name
            for name in to_send
            if _changed_upstream(name, fields[name].value, deal, originals, seen)
        )
        audit_rows = [
            audit_change(
                field=name,
                label=fields[name].label,
                old=_display(fields[name], fields[name].value),
                new=_display(fields[name], value),
            )
            for name, value in to_send.items()
        ]
        if not to_send:
            return _WritePlan(audit_rows)
        return _WritePlan(
            audit_rows,
            conflicts,
            lambda: adapter.update_deal(
                deal.id, to_send, ref=ref, idempotency_key=idempotency_key, current=deal
            ),
        )

    return _write("update", plan, user, connection_slug, deal_id, idempotency_key)


def deal_change_stage(
    *,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    deal_id: str,
    stage_id: str,
    seen_updated_at: dt.datetime | str | None,
    idempotency_key: str,
    originals: dict[str, Any] | None = None,
) -> DealDetail:
    def plan(adapter: Provider, deal: Deal, ref: ReferenceData) -> _WritePlan:
        return _state_plan(
            deal,
            [_stage_row(deal, ref, stage_id)],
            arrived=_stage_id(deal) == stage_id,
            originals=originals,
            seen_updated_at=seen_updated_at,
            send=lambda: adapter.change_stage(
                deal, stage_id, ref=ref, idempotency_key=idempotency_key
            ),
        )

    return _write("change_stage", plan, user, connection_slug, deal_id, idempotency_key)


def deal_mark_won(
    *,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    deal_id: str,
    seen_updated_at: dt.datetime | str | None,
    idempotency_key: str,
    originals: dict[str, Any] | None = None,
) -> DealDetail:
    def plan(adapter: Provider, deal: Deal, ref: ReferenceData) -> _WritePlan:
        return _state_plan(
            deal,
            [_status_row(deal, WON)],
            arrived=deal.status == WON,
            originals=originals,
            seen_updated_at=seen_updated_at,
            send=lambda: adapter.mark_won(deal, ref=ref, idempotency_key=idempotency_key),
        )

    return _write("mark_won", plan, user, connection_slug, deal_id, idempotency_key)


def deal_mark_lost(
    *,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    deal_id: str,
    reason: str,
    seen_updated_at: dt.datetime | str | None,
    idempotency_key: str,
    originals: dict[str, Any] | None = None,
) -> DealDetail:
    """``reason``: a Stora ``lost_reason`` value, or the id of a nodestash lost stage."""

    def plan(adapter: Provider, deal: Deal, ref: ReferenceData) -> _WritePlan:
        lost_stage = ref.stage(reason) if reason else None
        reason_label = lost_stage.name if lost_stage else humanise(reason)
        rows = [
            _status_row(deal, LOST),
            audit_change(
                field="lost_reason",
                label="Lost reason",
                old=deal.lost_reason_label or None,
                new=reason_label,
            ),
        ]
        return _state_plan(
            deal,
            rows,
            arrived=deal.status == LOST and reason in (deal.lost_reason, _stage_id(deal)),
            originals=originals,
            seen_updated_at=seen_updated_at,
            send=lambda: adapter.mark_lost(deal, reason, ref=ref, idempotency_key=idempotency_key),
        )

    return _write("mark_lost", plan, user, connection_slug, deal_id, idempotency_key)


def deal_reopen(
    *,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    deal_id: str,
    stage_id: str | None,
    assignee_id: str | None,
    seen_updated_at: dt.datetime | str | None,
    idempotency_key: str,
    originals: dict[str, Any] | None = None,
) -> DealDetail:
    def plan(adapter: Provider, deal: Deal, ref: ReferenceData) -> _WritePlan:
        rows = [_status_row(deal, OPEN)]
        if stage_id:
            rows.append(_stage_row(deal, ref, stage_id))
        if assignee_id:
            staff = {choice.value: choice.label for choice in ref.staff}
            rows.append(
                audit_change(
                    field="assignee",
                    label="Assignee",
                    old=deal.owner.name if deal.owner else None,
                    new=staff.get(assignee_id) or ref.names.get(assignee_id) or assignee_id,
                )
            )
        in_stage = deal.status == OPEN and stage_id in (None, "", _stage_id(deal))
        assigned = not assignee_id or bool(deal.owner and deal.owner.id == assignee_id)
        return _state_plan(
            deal,
            rows,
            arrived=in_stage and assigned,
            originals=originals,
            seen_updated_at=seen_updated_at,
            send=lambda: adapter.reopen(
                deal,
                stage_id=stage_id or None,
                assignee_id=assignee_id or None,
                ref=ref,
                idempotency_key=idempotency_key,
            ),
        )

    return _write("reopen", plan, user, connection_slug, deal_id, idempotency_key)


def _write(
    action: str,
    plan: Planner,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    deal_id: str,
    idempotency_key: str,
) -> DealDetail:
    """The one write path. Every upstream call of a write, its conflict re-read included, may
    spend the share of the rate budget that page views leave free, so a Save gets through while
    many people browse."""
    with write_priority():
        return _write_attempt(
            user=user,
            connection_slug=connection_slug,
            deal_id=deal_id,
            action=action,
            idempotency_key=idempotency_key,
            plan=plan,
        )


def _state_plan(
    deal: Deal,
    rows: list[dict[str, Any]],
    *,
    arrived: bool,
    originals: dict[str, Any] | None,
    seen_updated_at: str | dt.datetime | None,
    send: Callable[[], Deal],
) -> _WritePlan:
    """A stage or status write: nothing is sent when the deal is already where it was asked to
    go (``arrived``); otherwise it is checked against what the page showed, then sent."""
    if arrived:
        return _WritePlan(rows)
    return _WritePlan(rows, _state_conflicts(deal, originals, seen_updated_at), send)


def _write_attempt(
    *,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    deal_id: str,
    action: str,
    idempotency_key: str,
    plan: Planner,
) -> DealDetail:
    """Re-read, check for conflicts, send only what changed, and audit whatever happens."""
    connection = connection_for_slug(connection_slug)
    with contextlib.suppress(AuthenticationFailed):  # a key problem is reported (and audited) below
        _require_deal_id(connection, adapter_for_connection(connection), deal_id)
    if audit_succeeded_before(
        connection_slug=connection.slug, deal_id=deal_id, idempotency_key=idempotency_key
    ):
        # The same form submitted again: it already acted once; show the deal as it is now.
        return deal_get(connection_slug=connection.slug, deal_id=deal_id)

    def audit(
        deal_name: str,
        changes: list[dict[str, Any]],
        outcome: str,
        error_message: str = "",
        request_id: str = "",
    ) -> None:
        audit_record(
            user=user,
            connection_slug=connection.slug,
            connection_label=connection.label,
            deal_id=deal_id,
            deal_name=deal_name,
            action=action,
            changes=changes,
            outcome=outcome,
            error_message=error_message,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )

    deal: Deal | None = None
    try:
        adapter = adapter_for_connection(connection)
        try:
            deal, ref = _fetch_deal(adapter, deal_id, reference_get(adapter=adapter))
        except NotFound:
            deal_mark_deleted(connection, deal_id)
            raise
        deal_save(connection, deal)  # the re-read is the freshest copy anyone has
        planned = plan(adapter, deal, ref)
    except ProviderError as error:
        audit(
            deal.name if deal else "",
            [],
            AuditEntry.Outcome.FAILED,
            error.message,
            error.request_id,
        )
        raise
    if planned.conflicts:
        labels = [_field_label(name, planned.changes) for name in planned.conflicts]
        conflict = Conflict(
            f"{', '.join(labels)} changed in {connection.label} since you loaded this deal; "
            "your change was not saved.",
            current=deal,
            fields=planned.conflicts,
            connection_label=connection.label,
        )
        audit(deal.name, planned.changes, AuditEntry.Outcome.CONFLICT, conflict.message)
        raise conflict
    if planned.send is None:
        return _detail(connection, adapter, deal, ref, dt.datetime.now(dt.UTC))
    try:
        updated = planned.send()
    except ProviderError as error:
        outcome = AuditEntry.Outcome.FAILED
        _mark_outcome_unknown(error, "Reload the deal to check before you try again.")
        if isinstance(error, Conflict):
            outcome = AuditEntry.Outcome.CONFLICT
            error.current = error.current or _current_or_none(adapter, deal_id, ref)
        audit(deal.name, planned.changes, outcome, error.message, error.request_id)
        raise
    deal_save(connection, updated, authoritative=True)  # everyone sees it now, not next poll
    audit(
        updated.name or deal.name,
        planned.changes,
        AuditEntry.Outcome.SUCCEEDED,
        request_id=adapter.last_request_id,
    )
    return _detail(connection, adapter, updated, ref, dt.datetime.now(dt.UTC))


def _mark_outcome_unknown(error: ProviderError, what_to_do: str) -> None:
    """A write that timed out or whose answer could not be read went out: it may have been
    carried out. Say so, and never retry it."""
    if isinstance(error, Unavailable) and error.code in OUTCOME_UNKNOWN_CODES:
        error.message = (
            f"{error.message.rstrip('.')}, so DealDesk cannot tell whether your change was "
            f"saved. {what_to_do}"
        )
        error.code = WRITE_OUTCOME_UNKNOWN


def _current_or_none(adapter: Provider, deal_id: str, ref: ReferenceData) -> Deal | None:
    """The deal as it is now, for an upstream 409; the refusal itself is what matters."""
    try:
        return adapter.get_deal(deal_id, ref=ref)
    except ProviderError:
        return None


# --- Conflict checks -----------------------------------------------------------------------


def _parse_seen(seen_updated_at: dt.datetime | str | None) -> dt.datetime | None:
    if isinstance(seen_updated_at, dt.datetime):
        seen = seen_updated_at
    elif isinstance(seen_updated_at, str) and seen_updated_at.strip():
        try:
            seen = dt.datetime.fromisoformat(seen_updated_at.strip())
        except ValueError:
            return None
    else:
        return None
    return seen if seen.tzinfo else seen.replace(tzinfo=dt.UTC)


def _newer_than_seen(deal: Deal, seen: dt.datetime | None) -> bool:
    if seen is None or deal.updated_at is None:
        return False
    updated = deal.updated_at if deal.updated_at.tzinfo else deal.updated_at.replace(tzinfo=dt.UTC)
    return updated > seen


def _changed_upstream(
    name: str, current: Any, deal: Deal, originals: dict[str, Any] | None, seen: dt.datetime | None
) -> bool:
    """Did the field change upstream since the user saw it? Compared with the value the user
    saw when the form sends it; otherwise any newer ``updated_at`` counts as a change."""
    if originals is not None and name in originals:
        return not _same(originals[name], current)
    return _newer_than_seen(deal, seen)


def _state_conflicts(
    deal: Deal, originals: dict[str, Any] | None, seen_updated_at: dt.datetime | str | None
) -> tuple[str, ...]:
    """Stage changes, won, lost and reopen: refused when the stage or status the user saw is no
    longer the deal's."""
    originals = originals or {}
    if "stage" in originals or "status" in originals:
        fields = []
        if "stage" in originals and not _same(originals["stage"], _stage_id(deal)):
            fields.append("stage")
        if "status" in originals and not _same(originals["status"], deal.status):
            fields.append("status")
        return tuple(fields)
    if _newer_than_seen(deal, _parse_seen(seen_updated_at)):
        return ("stage", "status")
    return ()


def _stage_id(deal: Deal) -> str | None:
    return deal.stage.id if deal.stage else None


def _normalise(value: Any) -> Any:
    if value == "":
        return None
    if isinstance(value, list):
        return tuple(value)
    return value


def _same(left: Any, right: Any) -> bool:
    """Equal as field values: "" is None, a list is a tuple, 50000 is 50000.00, and a date
    equals a date-time on that day."""
    left, right = _normalise(left), _normalise(right)
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        try:
            return Decimal(str(left)) == Decimal(str(right))
        except (InvalidOperation, ValueError):
            return False
    one_is_datetime = isinstance(left, dt.datetime) != isinstance(right, dt.datetime)
    if one_is_datetime and isinstance(left, dt.date) and isinstance(right, dt.date):
        left = left.date() if isinstance(left, dt.datetime) else left
        right = right.date() if isinstance(right, dt.datetime) else right
    return bool(left == right)


# --- Audit rows ----------------------------------------------------------------------------


def _display(editable: EditableField, value: Any) -> Any:
    """A select's value shows as its choice label in the history."""
    for choice in editable.choices:
        if choice.value == value:
            return choice.label
    return value


def _status_row(deal: Deal, new_status: str) -> dict[str, Any]:
    return audit_change(
        field="status", label="Status", old=deal.status_label, new=humanise(new_status)
    )


def _stage_row(deal: Deal, ref: ReferenceData, stage_id: str) -> dict[str, Any]:
    target = ref.stage(stage_id)
    return audit_change(
        field="stage",
        label="Stage",
        old=deal.stage.name if deal.stage else None,
        new=target.name if target else stage_id,
    )


def _field_label(name: str, rows: list[dict[str, Any]]) -> str:
    for row in rows:
        if row["field"] == name:
            label: str = row["label"]
            return label
    return humanise(name)


# --- Create --------------------------------------------------------------------------------


@dataclass
class NewDeal:
    """The create form of one source: its fields in the vendor's words, from the store."""

    connection: SourceOption
    fields: list[EditableField]
    ref: ReferenceData

    def lookup_label(self, lookup: str, object_id: str) -> str:
        """The name of a picked contact or company, to show it picked again."""
        return self.ref.names.get(object_id, "") if lookup and object_id else ""


def deal_create_form(*, connection_slug: str) -> NewDeal:
    """The fields a new deal of this source takes. Reference data comes from the store (read
    live once only before the connection's first sync)."""
    connection = connection_for_slug(connection_slug)
    adapter = adapter_for_connection(connection)
    ref = reference_get(adapter=adapter)
    return NewDeal(source_option(connection), adapter.create_fields(ref=ref), ref)


def lookup_search(
    *, connection_slug: str, lookup: str, query: str, limit: int = 20
) -> list[LookupOption]:
    """Contacts or companies of a source whose name or email holds ``query``, from the store."""
    connection = connection_for_slug(connection_slug)
    return lookup_options(connection=connection, lookup=lookup, query=query, limit=limit)


def deal_create(
    *,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    values: dict[str, Any],
    idempotency_key: str,
) -> DealDetail:
    """Create a deal upstream, put it in the store at once and audit it (whatever happens).

    ``values`` are keyed by the ``create_fields`` names. The same ``idempotency_key`` (one per
    rendered form) creates one deal: a submit that already succeeded returns that deal, one
    racing it waits for it, and the key goes upstream too (a vendor answers a repeat with the
    first deal)."""
    connection = connection_for_slug(connection_slug)
    lock = f"dealdesk:create:{connection.slug}:{idempotency_key[:64]}"
    deadline = time.monotonic() + settings.DEALDESK_HTTP_READ_TIMEOUT + 5
    while True:
        created_id = audit_created_before(
            connection_slug=connection.slug, idempotency_key=idempotency_key
        )
        if created_id:  # the same form again: it already created its deal
            return deal_get(connection_slug=connection.slug, deal_id=created_id)
        if cache.add(lock, True, timeout=settings.DEALDESK_HTTP_READ_TIMEOUT + 5):
            break
        if time.monotonic() > deadline:
            break  # the other submit is lost: the vendor's idempotency still holds
        time.sleep(0.1)  # the other submit of this form is on its way: wait for its deal
    try:
        return _deal_create(user, connection, values, idempotency_key)
    finally:
        cache.delete(lock)


def _deal_create(
    user: AbstractBaseUser | AnonymousUser,
    connection: Connection,
    values: dict[str, Any],
    idempotency_key: str,
) -> DealDetail:
    typed_name = str(values.get("name") or "")

    def audit(
        deal_id: str, name: str, changes: list[dict[str, Any]], outcome: str, **kw: Any
    ) -> None:
        audit_record(
            user=user,
            connection_slug=connection.slug,
            connection_label=connection.label,
            deal_id=deal_id,
            deal_name=name,
            action="create",
            changes=changes,
            outcome=outcome,
            idempotency_key=idempotency_key,
            **kw,
        )

    changes: list[dict[str, Any]] = []
    try:
        adapter = adapter_for_connection(connection)
        ref = reference_get(adapter=adapter)
        fields = adapter.create_fields(ref=ref)
        changes = [
            audit_change(
                field=field.name,
                label=field.label,
                old=None,
                new=_created_display(field, values.get(field.name), ref),
            )
            for field in fields
            if values.get(field.name) not in (None, "", ())
        ]
        _check_lookups(fields, values, ref)
        with write_priority():
            created = adapter.create_deal(values, ref=ref, idempotency_key=idempotency_key)
    except ProviderError as error:
        _mark_outcome_unknown(error, "Look for the deal in the list before you try again.")
        audit(
            "",
            typed_name,
            changes,
            AuditEntry.Outcome.FAILED,
            error_message=error.message,
            request_id=error.request_id,
        )
        raise
    try:
        deal_save(connection, created, authoritative=True)  # in the list and its page at once
    except IntegrityError:  # a poll or webhook stored it a moment before: update that row
        deal_save(connection, created, authoritative=True)
    audit(
        created.id,
        created.name or typed_name,
        changes,
        AuditEntry.Outcome.SUCCEEDED,
        request_id=adapter.last_request_id,
    )
    return _detail(connection, adapter, created, ref, dt.datetime.now(dt.UTC))


def _check_lookups(fields: list[EditableField], values: dict[str, Any], ref: ReferenceData) -> None:
    """A picked contact or company must be one the store knows (a crafted id is not sent)."""
    known = {"contact": {c.id for c in ref.contacts}, "company": {p.id for p in ref.places}}
    errors = {
        field.name: [f"Choose a {field.label.lower()} from the list."]
        for field in fields
        if field.lookup
        and values.get(field.name)
        and str(values[field.name]) not in known.get(field.lookup, set())
    }
    if errors:
        raise ValidationFailed("Choose from the list.", field_errors=errors)


def _created_display(field: EditableField, value: Any, ref: ReferenceData) -> Any:
    if field.lookup:
        return ref.names.get(str(value), value)
    return _display(field, value)
