"""Reads of deals: queries over the synced store. No function here calls upstream.

Every filter, search, sort and total runs in the database over all stored deals of the chosen
sources, so a sort across both sources is exact. What a list computes over every matching deal
(its count and totals in one grouped query, a page's ids) is cached under the store's version
token (``sync/store.store_version``), which every change to a stored deal replaces: a warm page
then reads only its own rows, so it costs about the same with 40 deals or 10,000.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar, overload

from django.core.cache import cache
from django.db.models import Count, F, OrderBy, Q, QuerySet, Sum
from django.utils import timezone

from dealdesk.connections.models import Connection
from dealdesk.connections.services import connection_list
from dealdesk.deals.listing import DealFilters, SourceError
from dealdesk.deals.stale import StaleThresholds, stale_thresholds
from dealdesk.listtools.filters import OwnerKey, list_filters_q, sharp_cache_scope
from dealdesk.providers.base import OPEN, Deal, Money, ReferenceData, Stage
from dealdesk.sync.health import HEALTH_FIELDS, SyncHealth, sync_health
from dealdesk.sync.models import NextStepState, ReferenceItem, SyncedDeal, SyncState
from dealdesk.sync.store import (
    CARD_ROW_FIELDS,
    deal_from_row,
    reference_load,
    reference_versions,
    store_version,
)

MAX_PAGE_SIZE = 100
T = TypeVar("T")
# A cached figure is keyed by the store's version, so it is never stale; the timeout only bounds
# how long an unused one stays in the cache.
STORE_CACHE_TTL = 60 * 60


@dataclass(frozen=True)
class SourceOption:
    slug: str
    label: str
    provider: str


def source_option(connection: Connection) -> SourceOption:
    """How a connection is offered as a source in filters and on the board."""
    return SourceOption(slug=connection.slug, label=connection.label, provider=connection.provider)


@dataclass(frozen=True)
class CurrencyTotal:
    """The sum of one currency's values over every matching deal, and how many deals it adds."""

    money: Money
    count: int


class PageDeals(Sequence[Deal]):
    """A list page's deals in the page's order, read only when something looks at them. A warm
    page's rows come rendered from the row cache (``row_cache.py``) and Previous and Next need
    only the deals' keys (``keys``, cached apart), so such a page never reads the deals."""

    def __init__(
        self, ids: list[int], load: Callable[[], dict[int, Deal]], keys_key: str | None = None
    ) -> None:
        self.ids = ids
        self._load = load
        self._keys_key = keys_key
        self._deals: list[Deal] | None = None
        self._keys: list[str] | None = None

    def _all(self) -> list[Deal]:
        if self._deals is None:
            by_pk = self._load()
            self._deals = [by_pk[pk] for pk in self.ids if pk in by_pk]
        return self._deals

    @property
    def keys(self) -> list[str]:
        """The deals' keys (``Deal.key``), from the cache when the page was listed before."""
        if self._keys is None:
            self._keys = _cached(self._keys_key, lambda: [deal.key for deal in self._all()])
        return self._keys

    def __bool__(self) -> bool:
        # Before the deals are read, whether the page listed any; after, whether any was read (a
        # row removed in between, as when a connection's store starts afresh, is left out).
        return bool(self.ids) if self._deals is None else bool(self._deals)

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Deal]:
        return iter(self._all())

    @overload
    def __getitem__(self, index: int) -> Deal: ...
    @overload
    def __getitem__(self, index: slice) -> list[Deal]: ...
    def __getitem__(self, index: int | slice) -> Deal | list[Deal]:
        return self._all()[index]

    def __repr__(self) -> str:
        return f"PageDeals(ids={self.ids!r})"


def deal_keys(deals: Sequence[Deal]) -> list[str]:
    """The keys of a page's deals, without reading a lazy page's deals when its keys are known."""
    return deals.keys if isinstance(deals, PageDeals) else [deal.key for deal in deals]


@dataclass
class DealListResult:
    deals: Sequence[Deal]  # a list page's: ``PageDeals``
    errors: list[SourceError]  # per source: still loading, failing, or lagging
    sources: list[SourceOption]  # every enabled connection
    stage_choices: list[Stage]  # stages of the chosen source (empty without source)
    start_index: int  # 1-based, 0 when empty
    end_index: int
    total_count: int  # every deal matching the filters
    page: int
    page_count: int
    totals: list[Money]  # per currency over every matching deal
    text_value_count: int  # matching deals whose value is free text (cannot be added up)
    page_size: int
    refs: dict[str, ReferenceData] = field(default_factory=dict)
    currency_totals: list[CurrencyTotal] = field(default_factory=list)  # sums with counts
    # Names the page's deals as they are stored (the store's version and the row ids), so what
    # is rendered from them can be cached without reading them again; "" when unversioned.
    content_token: str = ""
    connections: list[Connection] = field(default_factory=list)  # every enabled one, as read
    store_version: str = ""  # the store's version the page was read at ("" when unversioned)
    # The listed connections' reference versions, read once by the first ``reference_for``.
    reference_version_by_pk: dict[int, str] | None = None

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page < self.page_count else None

    @property
    def prev_page(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    def reference_for(self, connection: Connection) -> ReferenceData | None:
        """The connection's stored reference data, or None before its first sync. The first
        call reads every listed connection's reference version at once."""
        if connection.slug not in self.refs:
            if self.reference_version_by_pk is None:
                self.reference_version_by_pk = reference_versions(self.connections)
            version = self.reference_version_by_pk.get(connection.pk)
            ref = (
                reference_load(connection, version=version)
                if version is not None or connection not in self.connections
                else None
            )
            if ref is None:
                return None
            self.refs[connection.slug] = ref
        return self.refs[connection.slug]


# --- Sync alerts -----------------------------------------------------------------------------


def source_alert(health: SyncHealth) -> SourceError | None:
    if not health.alert:
        return None
    return SourceError(
        health.connection_slug,
        health.connection_label,
        health.alert_kind,
        health.alert,
        progress_done=health.deals_so_far if health.loading else None,
        progress_total=health.deals_total if health.loading else None,
    )


def source_alerts(connections: Iterable[Connection]) -> list[SourceError]:
    connections = list(connections)
    rows = SyncState.objects.filter(connection__in=connections).only(*HEALTH_FIELDS)
    states = {s.connection_id: s for s in rows}
    alerts = []
    for connection in connections:
        alert = source_alert(sync_health(connection, states.get(connection.pk)))
        if alert is not None:
            alerts.append(alert)
    return alerts


def source_alerts_for(slug: str) -> list[SourceError]:
    """The alert of one enabled connection, for the board and a deal page."""
    return source_alerts(c for c in connection_list(enabled_only=True) if c.slug == slug)


# --- The list ----------------------------------------------------------------------------------


def _stale_q(thresholds: StaleThresholds, connections: list[Connection], now: dt.datetime) -> Q:
    """Open deals idle past their stage's threshold, as one database condition."""
    slug_to_pk = {c.slug: c.pk for c in connections}
    special = Q()
    overridden = Q()
    for (slug, stage_id), days in thresholds.by_stage.items():
        if slug not in slug_to_pk:
            continue
        in_stage = Q(connection_id=slug_to_pk[slug], stage_id=stage_id)
        overridden |= in_stage
        special |= in_stage & Q(upstream_updated_at__lt=now - dt.timedelta(days=days))
    default = Q(upstream_updated_at__lt=now - dt.timedelta(days=thresholds.default_days))
    if overridden:
        default &= ~overridden
    return Q(status=OPEN) & (default | special)


ORDERINGS: dict[str, list[str | OrderBy]] = {
    "-updated": [F("upstream_updated_at").desc(nulls_last=True), "-pk"],
    "updated": [F("upstream_updated_at").asc(nulls_last=True), "pk"],
    "name": ["name_sort", "pk"],
    "-name": ["-name_sort", "-pk"],
    "value": [F("value_amount").asc(nulls_last=True), "name_sort", "pk"],
    "-value": [F("value_amount").desc(nulls_last=True), "name_sort", "pk"],
    # Deals without an expected close date come last in both directions.
    "close": [F("expected_close_date").asc(nulls_last=True), "name_sort", "pk"],
    "-close": [F("expected_close_date").desc(nulls_last=True), "name_sort", "pk"],
}


def deal_queryset(
    *,
    filters: DealFilters,
    connections: list[Connection],
    now: dt.datetime | None = None,
    owner_keys: Iterable[OwnerKey] = (),
) -> QuerySet[SyncedDeal]:
    """Every stored deal of ``connections`` matching ``filters``, in the filters' order.
    ``owner_keys``: who the viewer is in each source, for "My deals"."""
    rows = SyncedDeal.objects.filter(connection__in=connections, deleted=False)
    if filters.q:
        rows = rows.filter(search_text__contains=filters.q.casefold())
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.stage:
        rows = rows.filter(stage_id=filters.stage)
    if filters.stale:
        rows = rows.filter(_stale_q(stale_thresholds(), connections, now or timezone.now()))
    if filters.no_next_step:  # computed from the synced activities (sync/activity_store.py)
        rows = rows.filter(status=OPEN, next_step_state=NextStepState.NONE)
    today = timezone.localdate(now) if now is not None else timezone.localdate()
    sharp = list_filters_q(filters.sharp, connections, owner_keys=owner_keys, today=today)
    if sharp:
        rows = rows.filter(sharp)
    return rows.order_by(*ORDERINGS.get(filters.sort, ORDERINGS["-updated"]))


@dataclass(frozen=True)
class ListFigures:
    """What a list shows about every deal matching its filters."""

    total_count: int
    currency_totals: list[CurrencyTotal]  # per currency: the sum and how many deals it adds
    text_value_count: int  # deals whose value is free text (cannot be added up)

    @property
    def totals(self) -> list[Money]:
        return [total.money for total in self.currency_totals]


def list_figures_of(rows: QuerySet[SyncedDeal]) -> ListFigures:
    """Count, totals per currency and the text-value count in one grouped pass over a covering
    index (``sync_deal_list`` or ``sync_deal_search``), rather than one pass for each."""
    groups = (
        rows.order_by()
        .values("value_currency")
        .annotate(
            count=Count("pk"),
            valued=Count("value_amount"),
            total=Sum("value_amount"),
            text_values=Count("pk", filter=Q(value_amount=None) & ~Q(value_text="")),
        )
    )
    total_count = text_value_count = 0
    totals = []
    for group in groups:
        total_count += group["count"]
        text_value_count += group["text_values"]
        if group["total"] is not None:
            money = Money(Decimal(group["total"]), group["value_currency"])
            totals.append(CurrencyTotal(money, group["valued"]))
    totals.sort(key=lambda total: total.money.currency)
    return ListFigures(total_count, totals, text_value_count)


def _store_cache_key(kind: str, *parts: object) -> str:
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f"dealdesk:store:{kind}:{digest}"


def _cached(key: str | None, compute: Callable[[], T]) -> T:
    """``compute()``, kept in the cache under ``key`` (None: not cached)."""
    if key is None:
        return compute()
    value: T | None = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, STORE_CACHE_TTL)
    return value


def _list_cache_key(
    kind: str,
    version: str,
    filters: DealFilters,
    connections: list[Connection],
    *extra: object,
    owner_keys: Iterable[OwnerKey] = (),
) -> str | None:
    """A cache key for a figure of this filtered list, or None when it must not be cached: the
    store was never versioned, or "stale only" (which moves with the clock, not the store).
    The sharper filters count with who "me" is and, for "closing this month", today's date."""
    if not version or filters.stale:
        return None
    # Every filter but the sort (figures do not depend on it; ids add it) and the source (the
    # connections stand for it), so a filter added to DealFilters can never share a key; and
    # what the sharper filters resolve per user and per day ("me", "this month").
    scope = (dataclasses.replace(filters, sort="", source=""), [c.pk for c in connections])
    sharp = sharp_cache_scope(filters.sharp, owner_keys, today=timezone.localdate())
    return _store_cache_key(kind, version, scope, sharp, *extra)


def chosen_connections(filters: DealFilters) -> tuple[DealFilters, list[Connection], list]:
    connections = connection_list(enabled_only=True)
    if filters.source and filters.source not in {c.slug for c in connections}:
        filters = dataclasses.replace(filters, source="", stage="")  # unknown source: all
    chosen = [c for c in connections if not filters.source or c.slug == filters.source]
    return filters, chosen, connections


def deal_list(
    *,
    filters: DealFilters,
    page: int = 1,
    page_size: int = 25,
    owner_keys: Iterable[OwnerKey] = (),
) -> DealListResult:
    page_size = max(1, min(MAX_PAGE_SIZE, int(page_size)))
    filters, chosen, connections = chosen_connections(filters)
    owner_keys = tuple(owner_keys)
    rows = deal_queryset(filters=filters, connections=chosen, owner_keys=owner_keys)
    version = store_version()
    figures: ListFigures = _cached(
        _list_cache_key("figures", version, filters, chosen, owner_keys=owner_keys),
        lambda: list_figures_of(rows),
    )
    total_count = figures.total_count
    page_count = max(1, -(-total_count // page_size))
    page = max(1, min(int(page), page_count))
    offset = (page - 1) * page_size
    # The page's ids first (from the covering index ``sync_deal_list``), then only those rows:
    # sorting whole rows would read every matching deal's JSON.
    ids: list[int] = _cached(
        _list_cache_key(
            "ids", version, filters, chosen, filters.sort, offset, page_size, owner_keys=owner_keys
        ),
        lambda: list(rows.values_list("pk", flat=True)[offset : offset + page_size]),
    )
    # The page's deals too, read only if the page needs them (rows not in the row cache), and
    # their keys apart: every change to a stored deal gives the store a new version.
    deals = PageDeals(
        ids,
        lambda: _cached(
            _store_cache_key("rows", version, ids) if version else None,
            lambda: deals_by_row_id(ids),
        ),
        keys_key=_store_cache_key("keys", version, ids) if version else None,
    )
    shown = len(ids) if version else len(deals)  # unversioned: read now, and counted exactly
    result = DealListResult(
        deals=deals,
        errors=source_alerts(chosen),
        sources=[source_option(c) for c in connections],
        stage_choices=[],
        start_index=offset + 1 if shown else 0,
        end_index=offset + shown,
        total_count=total_count,
        page=page,
        page_count=page_count,
        totals=[t.money for t in figures.currency_totals],
        currency_totals=figures.currency_totals,
        text_value_count=figures.text_value_count,
        page_size=page_size,
        content_token=f"{version}:{ids}" if version else "",
        connections=connections,
        store_version=version,
    )
    if filters.source and len(chosen) == 1:
        ref = result.reference_for(chosen[0])
        if ref is not None:
            result.stage_choices = [s for p in ref.pipelines for s in p.ordered_stages()]
    return result


@dataclass(frozen=True)
class PipelineGroup:
    """Deals of one pipeline sharing a status, a stage and a currency: how many, and their sum."""

    status: str
    stage_id: str
    currency: str
    count: int
    total: Decimal | None


def pipeline_groups(
    *, connection: Connection, pipeline_id: str, version: str | None = None
) -> list[PipelineGroup]:
    """Every count and total a board needs, in one grouped query over the covering index
    ``sync_deal_pipeline``; cached under the store's ``version`` (read when not given)."""
    version = store_version() if version is None else version

    def groups() -> list[PipelineGroup]:
        rows = (
            SyncedDeal.objects.filter(connection=connection, pipeline_id=pipeline_id, deleted=False)
            .order_by()
            .values("status", "stage_id", "value_currency")
            .annotate(count=Count("pk"), total=Sum("value_amount"))
        )
        return [
            PipelineGroup(
                row["status"], row["stage_id"], row["value_currency"], row["count"], row["total"]
            )
            for row in rows
        ]

    key = _store_cache_key("groups", version, connection.pk, pipeline_id) if version else None
    return _cached(key, groups)


def pipeline_card_ids(
    *, connection: Connection, pipeline_id: str, where: Q, cards: int, version: str | None = None
) -> list[int]:
    """The row ids of the ``cards`` most recently updated deals of one pipeline matching
    ``where``; cached under the store's ``version`` (read when not given)."""
    version = store_version() if version is None else version

    def ids() -> list[int]:
        rows = SyncedDeal.objects.filter(
            where, connection=connection, pipeline_id=pipeline_id, deleted=False
        )
        return list(rows.order_by(*ORDERINGS["-updated"]).values_list("pk", flat=True)[:cards])

    key = (
        _store_cache_key("cards", version, connection.pk, pipeline_id, str(where), cards)
        if version
        else None
    )
    return _cached(key, ids)


def deals_by_row_id(ids: Iterable[int]) -> dict[int, Deal]:
    """The stored deals with these row ids, as list rows and board cards show them, read in one
    query (only the columns a ``Deal`` is made from: the indexed ones would only be decoded and
    dropped, and so would the vendor's raw JSON)."""
    rows = SyncedDeal.objects.only("pk", *CARD_ROW_FIELDS).in_bulk(list(ids))
    return {pk: deal_from_row(row, raw=False) for pk, row in rows.items()}


# --- Lookups for the create form -------------------------------------------------------------

LOOKUP_KINDS = {"contact": ReferenceItem.Kind.CONTACT, "company": ReferenceItem.Kind.PLACE}


@dataclass(frozen=True)
class LookupOption:
    """A contact or company to pick: its id, its name, and what tells namesakes apart."""

    id: str
    label: str
    detail: str = ""  # a contact's email; a company's address or website


def lookup_options(
    *, connection: Connection, lookup: str, query: str, limit: int = 20
) -> list[LookupOption]:
    """The synced contacts (``lookup="contact"``) or companies and sites (``"company"``) of one
    connection whose name or email holds ``query``, by name; one indexed query, no upstream."""
    kind = LOOKUP_KINDS.get(lookup)
    if kind is None:
        return []
    rows = ReferenceItem.objects.filter(connection=connection, kind=kind)
    text = " ".join(query.split())[:100]
    if text:
        rows = rows.filter(Q(name__icontains=text) | Q(details__email__icontains=text))
    options = []
    for row in rows.order_by("name", "upstream_id")[: max(1, min(limit, 50))]:
        details = row.details if isinstance(row.details, dict) else {}
        detail = next(
            (
                str(details[key])
                for key in ("email", "address", "website")
                if isinstance(details.get(key), str) and details[key]
            ),
            "",
        )
        label = row.name or row.upstream_id
        options.append(LookupOption(row.upstream_id, label, "" if detail == label else detail))
    return options
