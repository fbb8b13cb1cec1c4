"""Reads the list tools add over the synced store: who "me" is in each source, the owners and
currencies the filters offer, and every row of a filtered list for the CSV export. No function
here calls upstream."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.cache import cache

from dealdesk.connections.models import Connection
from dealdesk.connections.services import connection_list
from dealdesk.deals.listing import DealFilters
from dealdesk.deals.selectors import chosen_connections, deal_queryset
from dealdesk.listtools.filters import OwnerKey
from dealdesk.listtools.models import OwnerLink
from dealdesk.providers.base import ReferenceData, humanise
from dealdesk.sync.models import SyncedDeal
from dealdesk.sync.store import reference_load, store_version

EXPORT_CHUNK = 500
CURRENCY_CACHE_TTL = 60 * 60  # keyed by the store's version: never stale, only unused


def owner_links_for(user: Any) -> list[OwnerKey]:
    """Who ``user`` is in each connection (an admin links them; ``OwnerLink``)."""
    if user is None or not user.is_authenticated:
        return []
    return [
        OwnerKey(connection_id, owner_id)
        # In connection order without the model's ordering, which joins the connections.
        for connection_id, owner_id in OwnerLink.objects.filter(user=user)
        .order_by("connection_id")
        .values_list("connection_id", "owner_id")
    ]


@dataclass(frozen=True)
class OwnerGroup:
    """One source's staff, as the owner filter offers them (values ``slug:owner id``)."""

    label: str
    choices: tuple[tuple[str, str], ...]


def owner_choices(
    connections: list[Connection] | None = None,
    *,
    reference: Callable[[Connection], ReferenceData | None] = reference_load,
) -> list[OwnerGroup]:
    """Every staff member of every enabled connection, from its synced reference data (read
    with ``reference``: a list page passes what it already read)."""
    groups = []
    if connections is None:
        connections = connection_list(enabled_only=True)
    for connection in connections:
        ref = reference(connection)
        if ref is None or not ref.staff:
            continue
        choices = tuple((f"{connection.slug}:{s.value}", s.label) for s in ref.staff if s.value)
        groups.append(OwnerGroup(connection.label, choices))
    return groups


def staff_choices(connection: Connection) -> list[tuple[str, str]]:
    """``(owner id, name)`` of one connection's synced staff, for the admin's owner links."""
    ref = reference_load(connection)
    return [(s.value, s.label) for s in ref.staff if s.value] if ref is not None else []


def currency_choices(*, version: str | None = None) -> list[str]:
    """The currencies stored deals carry, for the value filter's currency select (kept in the
    cache under the store's version, like the list's own figures; ``version``: the one the page
    already read)."""
    version = store_version() if version is None else version
    key = f"dealdesk:store:currencies:{version}"
    cached: list[str] | None = cache.get(key) if version else None
    if cached is not None:
        return cached
    found = sorted(
        c
        for c in SyncedDeal.objects.filter(deleted=False)
        .exclude(value_currency="")
        .order_by()
        .values_list("value_currency", flat=True)
        .distinct()
        if c
    )
    if version:
        cache.set(key, found, CURRENCY_CACHE_TTL)
    return found


# --- CSV export -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRow:
    name: str
    source: str
    stage: str
    status: str
    value_amount: Decimal | None
    value_currency: str
    value_text: str
    owner: str
    expected_close: dt.date | None
    tags: tuple[str, ...]
    updated_at: dt.datetime | None


_EXPORT_FIELDS = (
    "connection_id",
    "name",
    "stage_name",
    "status",
    "value_amount",
    "value_currency",
    "value_text",
    "owner_name",
    "expected_close_date",
    "tags",
    "upstream_updated_at",
)


def deal_export_rows(*, filters: DealFilters, user: Any = None) -> Iterator[ExportRow]:
    """Every deal of the filtered list in the list's order, read from the store in chunks
    (``.iterator``), so a 20,000-row export never holds the whole list in memory."""
    filters, chosen, _connections = chosen_connections(filters)
    labels = {c.pk: c.label for c in chosen}
    rows = deal_queryset(filters=filters, connections=chosen, owner_keys=owner_links_for(user))
    for values in rows.values_list(*_EXPORT_FIELDS).iterator(chunk_size=EXPORT_CHUNK):
        connection_id, name, stage, status, amount, currency, text, owner, close, tags, updated = (
            values
        )
        yield ExportRow(
            name=name,
            source=labels.get(connection_id, ""),
            stage=stage,
            status=humanise(status),
            value_amount=amount,
            value_currency=currency,
            value_text=text,
            owner=owner,
            expected_close=close,
            tags=tuple(str(t) for t in tags or ()),
            updated_at=updated,
        )
