"""Reading and writing the synced store, always through the adapters' dataclasses.

``deal_to_payload`` / ``deal_from_payload`` turn a ``Deal`` into JSON and back; ``deal_save``
upserts one deal (keeping fields the answer left out, and never letting an older answer
overwrite a newer stored one unless told to); ``reference_save`` / ``reference_load`` keep a
connection's ``ReferenceData`` as rows. Every change to a stored deal's content also changes the
store's version token (``store_version``), under which reads cache what they computed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from dealdesk.connections.models import Connection
from dealdesk.providers.base import (
    CatalogueItem,
    Choice,
    ContactInfo,
    Deal,
    LineItem,
    Money,
    NextStep,
    Pipeline,
    PlaceInfo,
    Ref,
    ReferenceData,
    Stage,
    parse_timestamp,
)
from dealdesk.sync.live import own_changes_note
from dealdesk.sync.models import (
    NEXT_STEP_FIELDS,
    DealChange,
    NextStepState,
    ReferenceItem,
    StoreVersion,
    SyncedDeal,
)

MAX_TEXT = 500  # stored columns are bounded; the payload keeps the whole (parsed) value
MAX_RAW_BYTES = 64 * 1024  # a vendor body larger than this is not kept verbatim


# --- Deal <-> JSON -------------------------------------------------------------------------


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _flat_json(item: Any) -> dict[str, Any]:
    """A dataclass of plain values (``Stage``, ``Ref``, ``LineItem``) as a dict: its
    ``__dict__`` copied, what ``dataclasses.asdict`` gives at a thirtieth of the cost (it
    deep-copies every value, and a sync saves thousands of deals of several each)."""
    return dict(vars(item))


def _stage_json(stage: Stage | None) -> dict[str, Any] | None:
    return _flat_json(stage) if stage is not None else None


def _ref_json(ref: Ref | None) -> dict[str, Any] | None:
    return _flat_json(ref) if ref is not None else None


def deal_to_payload(deal: Deal) -> dict[str, Any]:
    """Every field of ``deal`` but ``raw`` as JSON (the row keeps ``raw`` on its own)."""
    pipeline = deal.pipeline
    return {
        "connection_slug": deal.connection_slug,
        "source_label": deal.source_label,
        "provider": deal.provider,
        "id": deal.id,
        "name": deal.name,
        "status": deal.status,
        "stage": _stage_json(deal.stage),
        "pipeline": {
            "id": pipeline.id,
            "name": pipeline.name,
            "stages": [_stage_json(s) for s in pipeline.stages],
        }
        if pipeline is not None
        else None,
        "value": {"amount": str(deal.value.amount), "currency": deal.value.currency}
        if deal.value is not None
        else None,
        "value_text": deal.value_text,
        "owner": _ref_json(deal.owner),
        "owner_id": deal.owner_id,
        "creator": _ref_json(deal.creator),
        "contact": _ref_json(deal.contact),
        "company": _ref_json(deal.company),
        "site": _ref_json(deal.site),
        "starts_at": _iso(deal.starts_at),
        "expected_close_date": _iso(deal.expected_close_date),
        "note": deal.note,
        "tags": list(deal.tags),
        "custom_fields": deal.custom_fields,
        "metadata": deal.metadata,
        "line_items": [_flat_json(item) for item in deal.line_items],
        "lost_reason": deal.lost_reason,
        "closed_at": _iso(deal.closed_at),
        "created_at": _iso(deal.created_at),
        "updated_at": _iso(deal.updated_at),
        "absent": sorted(deal.absent),
    }


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _stage(data: Any) -> Stage | None:
    return Stage(**data) if isinstance(data, dict) else None


def _ref(data: Any) -> Ref | None:
    return Ref(**data) if isinstance(data, dict) else None


def deal_from_payload(payload: dict[str, Any], raw: dict[str, Any] | None = None) -> Deal:
    pipeline_data = payload.get("pipeline")
    pipeline = None
    if isinstance(pipeline_data, dict):
        pipeline = Pipeline(
            pipeline_data["id"],
            pipeline_data["name"],
            tuple(s for s in map(_stage, pipeline_data.get("stages") or []) if s),
        )
    value_data = payload.get("value")
    value = None
    if isinstance(value_data, dict):
        try:
            value = Money(Decimal(value_data["amount"]), value_data["currency"])
        except (InvalidOperation, KeyError, TypeError):
            value = None
    return Deal(
        connection_slug=payload["connection_slug"],
        source_label=payload.get("source_label") or "",
        provider=payload.get("provider") or "",
        id=payload["id"],
        name=payload.get("name") or "",
        status=payload.get("status") or "",
        stage=_stage(payload.get("stage")),
        pipeline=pipeline,
        value=value,
        value_text=payload.get("value_text"),
        owner=_ref(payload.get("owner")),
        owner_id=payload.get("owner_id"),
        creator=_ref(payload.get("creator")),
        contact=_ref(payload.get("contact")),
        company=_ref(payload.get("company")),
        site=_ref(payload.get("site")),
        starts_at=parse_timestamp(payload.get("starts_at")),
        expected_close_date=_date(payload.get("expected_close_date")),
        note=payload.get("note"),
        tags=tuple(payload.get("tags") or ()),
        custom_fields=dict(payload.get("custom_fields") or {}),
        metadata=dict(payload.get("metadata") or {}),
        line_items=tuple(LineItem(**item) for item in payload.get("line_items") or ()),
        lost_reason=payload.get("lost_reason"),
        closed_at=parse_timestamp(payload.get("closed_at")),
        created_at=parse_timestamp(payload.get("created_at")),
        updated_at=parse_timestamp(payload.get("updated_at")),
        raw=raw or {},
        absent=frozenset(payload.get("absent") or ()),
    )


# The columns ``deal_from_row(row, raw=False)`` reads: what a list row or board card is made
# from (the vendor's raw JSON, which only the deal page's links read, would be decoded for
# nothing).
CARD_ROW_FIELDS = ("payload", *NEXT_STEP_FIELDS)


def deal_from_row(row: SyncedDeal, *, raw: bool = True) -> Deal:
    """The stored deal; ``raw=False`` for a row read with ``CARD_ROW_FIELDS`` (its ``raw`` is
    then left empty, never read field by field)."""
    deal = deal_from_payload(row.payload, row.raw if raw else None)
    if row.next_step_state:
        deal.next_step = NextStep(
            planned=row.next_step_state == NextStepState.PLANNED,
            subject=row.next_step_subject,
            kind=row.next_step_kind,
            due_date=row.next_step_due,
        )
    return deal


# --- The store's version ----------------------------------------------------------------------


def store_version() -> str:
    """The token of the store's current content; "" before anything was ever stored (nothing
    should be cached under it)."""
    token = StoreVersion.objects.filter(pk=1).values_list("token", flat=True).first()
    return token or ""


def store_changed() -> None:
    """A new token: whatever was cached under the old one is not read again. Called in the same
    transaction as the change, so a reader never sees the new token with the old content."""
    token = uuid.uuid4().hex
    if not StoreVersion.objects.filter(pk=1).update(token=token):
        StoreVersion.objects.update_or_create(pk=1, defaults={"token": token})


# --- Deals -----------------------------------------------------------------------------------


def _bounded(text: str | None, limit: int = MAX_TEXT) -> str:
    return (text or "")[:limit]


def _raw_for_storage(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = json.dumps(raw)
    except (TypeError, ValueError):
        return {}
    return raw if len(encoded) <= MAX_RAW_BYTES else {}


def _keep_absent(deal: Deal, stored: SyncedDeal | None) -> Deal:
    """Fields the answer did not carry keep their stored value; a field no answer ever carried
    stays marked absent (the page says so, and editing it reads the deal live first)."""
    if not deal.absent or stored is None:
        return deal
    known = deal_from_row(stored)
    kept = {name: getattr(known, name) for name in deal.absent if hasattr(known, name)}
    return dataclasses.replace(deal, **kept, absent=deal.absent & known.absent)


def row_fields(deal: Deal, *, now: dt.datetime) -> dict[str, Any]:
    """The indexed columns of one deal."""
    company = deal.company or deal.site
    searchable = [deal.name, deal.contact.name if deal.contact else "", *deal.tags]
    if company:
        searchable.append(company.name)
    return {
        "name": _bounded(deal.name),
        "name_sort": _bounded(deal.name.casefold(), 200),
        "status": _bounded(deal.status, 40),
        "stage_id": _bounded(deal.stage.id if deal.stage else "", 100),
        "stage_name": _bounded(deal.stage.name if deal.stage else "", 300),
        "pipeline_id": _bounded(
            deal.pipeline.id
            if deal.pipeline
            else (deal.stage.pipeline_id or "")
            if deal.stage
            else "",
            100,
        ),
        "value_amount": deal.value.amount if deal.value else None,
        "value_currency": _bounded(deal.value.currency if deal.value else "", 8),
        "value_text": _bounded(deal.value_text),
        "owner_id": _bounded(
            deal.owner.id if deal.owner and deal.owner.id else deal.owner_id or "", 100
        ),
        "owner_name": _bounded(deal.owner.name if deal.owner else "", 300),
        "contact_id": _bounded(deal.contact.id if deal.contact and deal.contact.id else "", 100),
        "contact_name": _bounded(deal.contact.name if deal.contact else "", 300),
        "company_id": _bounded(company.id if company and company.id else "", 100),
        "company_name": _bounded(company.name if company else "", 300),
        "tags": list(deal.tags),
        "search_text": " ".join(part for part in searchable if part).casefold()[:4000],
        "expected_close_date": deal.expected_close_date,
        "upstream_created_at": deal.created_at,
        "upstream_updated_at": deal.updated_at,
        "synced_at": now,
        "deleted": False,
        "payload": deal_to_payload(deal),
        "raw": _raw_for_storage(deal.raw),
    }


def _is_older(deal: Deal, stored: SyncedDeal) -> bool:
    if deal.updated_at is None or stored.upstream_updated_at is None:
        return False
    return deal.updated_at < stored.upstream_updated_at


def deals_save(
    connection: Connection,
    deals: Iterable[Deal],
    *,
    authoritative: bool = False,
    walk_started_at: dt.datetime | None = None,
) -> int:
    """Upsert ``deals`` in one transaction; returns how many rows changed.

    An answer older than the stored deal is ignored (a poll racing a write), unless
    ``authoritative`` (a full walk re-reads everything and wins). ``walk_started_at`` marks the
    rows a full walk has seen.
    """
    deals = [deal for deal in deals if deal.id]
    if not deals:
        return 0
    now = timezone.now()
    changed = 0
    changes: list[DealChange] = []
    with transaction.atomic():
        stored = {
            row.upstream_id: row
            for row in SyncedDeal.objects.filter(
                connection=connection, upstream_id__in=[deal.id for deal in deals]
            )
        }
        # New deals are inserted together at the end (a backfill's pages); a deal named twice
        # in one answer is compared with, and replaced by, its later reading, as before.
        new: dict[str, SyncedDeal] = {}
        for deal in deals:
            row = stored.get(deal.id) or new.get(deal.id)
            if row is not None and not authoritative and not row.deleted and _is_older(deal, row):
                continue
            fields = row_fields(_keep_absent(deal, row), now=now)
            if walk_started_at is not None:
                fields["walk_seen_at"] = walk_started_at
            if row is None or row.deleted or row.payload != fields["payload"]:
                changes.append(
                    DealChange(connection=connection, upstream_id=deal.id, changed_at=now)
                )
            if deal.id in stored:
                SyncedDeal.objects.filter(pk=stored[deal.id].pk).update(**fields)
            else:
                new[deal.id] = SyncedDeal(connection=connection, upstream_id=deal.id, **fields)
            changed += 1
        SyncedDeal.objects.bulk_create(new.values())
        DealChange.objects.bulk_create(changes)  # what open pages follow (sync/live.py)
        if changes:
            store_changed()
        own_changes_note(changes)
    return changed


def deal_save(connection: Connection, deal: Deal, *, authoritative: bool = False) -> None:
    deals_save(connection, [deal], authoritative=authoritative)


def deal_mark_deleted(connection: Connection, deal_id: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        if SyncedDeal.objects.filter(
            connection=connection, upstream_id=deal_id, deleted=False
        ).update(deleted=True, synced_at=now):
            change = DealChange.objects.create(
                connection=connection, upstream_id=deal_id, changed_at=now
            )
            store_changed()
            own_changes_note([change])


def stored_deal(connection: Connection, deal_id: str) -> tuple[Deal, SyncedDeal] | None:
    """The stored deal and its row, or None when the store has no such (live) deal."""
    row = SyncedDeal.objects.filter(
        connection=connection, upstream_id=deal_id, deleted=False
    ).first()
    return (deal_from_row(row), row) if row is not None else None


# --- Reference data --------------------------------------------------------------------------


def reference_save(connection: Connection, ref: ReferenceData) -> None:
    """Replace the connection's stored reference data with ``ref``."""
    rows: list[ReferenceItem] = [
        ReferenceItem(
            connection=connection, kind=ReferenceItem.Kind.VERSION, upstream_id=uuid.uuid4().hex
        )
    ]
    for order, pipeline in enumerate(ref.pipelines):
        rows.append(
            ReferenceItem(
                connection=connection,
                kind=ReferenceItem.Kind.PIPELINE,
                upstream_id=pipeline.id,
                name=_bounded(pipeline.name),
                order=order,
            )
        )
        for stage_order, stage in enumerate(pipeline.stages):
            if stage.id:
                rows.append(
                    ReferenceItem(
                        connection=connection,
                        kind=ReferenceItem.Kind.STAGE,
                        upstream_id=stage.id,
                        name=_bounded(stage.name),
                        position=stage.position,
                        stage_type=_bounded(stage.type, 20),
                        pipeline_id=pipeline.id,
                        order=stage_order,
                    )
                )
    for order, choice in enumerate(ref.staff):
        rows.append(
            ReferenceItem(
                connection=connection,
                kind=ReferenceItem.Kind.STAFF,
                upstream_id=choice.value,
                name=_bounded(choice.label),
                order=order,
            )
        )
    rows.extend(_detail_rows(connection, ref))
    named = {choice.value for choice in ref.staff} | {row.upstream_id for row in rows}
    for order, (object_id, name) in enumerate(ref.names.items()):
        if object_id in named:
            continue  # a staff, contact or place row already names it
        rows.append(
            ReferenceItem(
                connection=connection,
                kind=ReferenceItem.Kind.NAME,
                upstream_id=_bounded(object_id, 100),
                name=_bounded(name),
                order=order,
            )
        )
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        if (row.kind, row.upstream_id) not in seen:
            seen.add((row.kind, row.upstream_id))
            unique.append(row)
    with transaction.atomic():
        ReferenceItem.objects.filter(connection=connection).delete()
        ReferenceItem.objects.bulk_create(unique, batch_size=500)


def _detail_rows(connection: Connection, ref: ReferenceData) -> list[ReferenceItem]:
    """Contacts, places, catalogue items and link templates, each with what it keeps beyond a
    name in ``details``."""
    Kind = ReferenceItem.Kind
    rows = []
    for order, contact in enumerate(ref.contacts):
        details = {"email": contact.email, "phone": contact.phone, "company_id": contact.company_id}
        rows.append((Kind.CONTACT, contact.id, contact.name, "", details, order))
    for order, place in enumerate(ref.places):
        details = {"kind": place.kind, "address": place.address, "website": place.website}
        rows.append((Kind.PLACE, place.id, place.name, "", details, order))
    for order, item in enumerate(ref.catalogue):
        rows.append((Kind.CATALOGUE, item.id, item.name, item.type, {"detail": item.detail}, order))
    for order, (name, href) in enumerate(sorted(ref.link_templates.items())):
        rows.append((Kind.LINK, name, "", "", {"href": href[:2000]}, order))
    return [
        ReferenceItem(
            connection=connection,
            kind=kind,
            upstream_id=_bounded(upstream_id, 100),
            name=_bounded(name),
            stage_type=_bounded(stage_type, 20),
            details={key: _bounded(value, 2000) for key, value in details.items()},
            order=order,
        )
        for kind, upstream_id, name, stage_type, details, order in rows
        if upstream_id
    ]


def _text_of(details: Any, key: str) -> str:
    value = details.get(key) if isinstance(details, dict) else None
    return value if isinstance(value, str) else ""


# Built ReferenceData in this process, keyed by the version row every save writes anew, so
# pages read it without rebuilding thousands of names each time.
_reference_memo: dict[str, ReferenceData] = {}


def reference_versions(connections: Iterable[Connection]) -> dict[int, str]:
    """Each connection's stored reference version (by connection pk), in one query; a
    connection whose reference data was never synced is absent."""
    rows = ReferenceItem.objects.filter(
        connection__in=list(connections), kind=ReferenceItem.Kind.VERSION
    ).order_by("-id")  # newest first: each connection keeps its oldest, as ``.first()`` reads
    return dict(rows.values_list("connection_id", "upstream_id"))


def reference_load(connection: Connection, *, version: str | None = None) -> ReferenceData | None:
    """The stored reference data, or None when it was never synced. ``version``: the one
    ``reference_versions`` read for it (not read again)."""
    if version is None:
        version = (
            ReferenceItem.objects.filter(connection=connection, kind=ReferenceItem.Kind.VERSION)
            .values_list("upstream_id", flat=True)
            .first()
        )
    if version is None:
        return None
    memo = _reference_memo.get(version)
    if memo is None:
        if len(_reference_memo) > 64:
            _reference_memo.clear()
        memo = _reference_memo[version] = _reference_build(connection)
    return memo


def _reference_build(connection: Connection) -> ReferenceData:
    rows = list(ReferenceItem.objects.filter(connection=connection).order_by("kind", "order"))
    stages: dict[str, list[Stage]] = {}
    for row in rows:
        if row.kind == ReferenceItem.Kind.STAGE:
            stages.setdefault(row.pipeline_id, []).append(
                Stage(row.upstream_id, row.name, row.position, row.stage_type, row.pipeline_id)
            )
    pipelines = tuple(
        Pipeline(row.upstream_id, row.name, tuple(stages.get(row.upstream_id, ())))
        for row in rows
        if row.kind == ReferenceItem.Kind.PIPELINE
    )
    staff = tuple(
        Choice(row.upstream_id, row.name) for row in rows if row.kind == ReferenceItem.Kind.STAFF
    )
    Kind = ReferenceItem.Kind
    names = {
        row.upstream_id: row.name
        for row in rows
        if row.kind in (Kind.NAME, Kind.STAFF, Kind.CONTACT, Kind.PLACE)
    }
    contacts = tuple(
        ContactInfo(
            row.upstream_id,
            row.name,
            email=_text_of(row.details, "email"),
            phone=_text_of(row.details, "phone"),
            company_id=_text_of(row.details, "company_id"),
        )
        for row in rows
        if row.kind == Kind.CONTACT
    )
    places = tuple(
        PlaceInfo(
            row.upstream_id,
            row.name,
            _text_of(row.details, "kind"),
            address=_text_of(row.details, "address"),
            website=_text_of(row.details, "website"),
        )
        for row in rows
        if row.kind == Kind.PLACE
    )
    catalogue = tuple(
        CatalogueItem(row.upstream_id, row.stage_type, row.name, _text_of(row.details, "detail"))
        for row in rows
        if row.kind == Kind.CATALOGUE
    )
    links = {
        row.upstream_id: _text_of(row.details, "href") for row in rows if row.kind == Kind.LINK
    }
    return ReferenceData(
        pipelines=pipelines,
        staff=staff,
        names=names,
        contacts=contacts,
        places=places,
        catalogue=catalogue,
        link_templates=links,
    )
