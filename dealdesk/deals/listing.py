"""One page of deals across every connection: concurrent fetch, merge, combined cursor.

How a page is built (``list_page``):

- Sorts an upstream can do (updated either way; value on nodestash) *stream*: each source keeps a
  position (a Stora row offset, or a nodestash upstream cursor plus a count of rows already
  taken from that upstream page). Every source fetches about one page from its position, all
  sources at once in threads, and a k-way merge takes ``page_size`` rows. Each source's position
  then moves past exactly the rows taken, so no deal repeats or goes missing across pages.
- Sorts no upstream can do (name) use a *snapshot*: every matching row of each source (at most
  ``SNAPSHOT_MAX_ROWS``), sorted once and cached for ``SNAPSHOT_TTL`` seconds, paged by offset.
- Every row is re-checked against the filters here, so an upstream that ignores a filter shows
  no wrong row. When that drops rows, the page keeps fetching (at most ``MAX_CALLS_PER_SOURCE``
  calls per source) and may come back short, still with a next cursor.

Worker threads only call adapters and the cache, never the database.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.cache import cache

from dealdesk.deals.reference import (
    reference_get,
    reference_refresh_for_unknown_stage,
    reference_unknown_stage,
)
from dealdesk.deals.stale import StaleThresholds, stale_thresholds
from dealdesk.providers.base import (
    OPEN,
    QUOTA_SPENT,
    STATUSES,
    AuthenticationFailed,
    Deal,
    DealQuery,
    Forbidden,
    NotFound,
    Provider,
    ProviderError,
    RateLimited,
    ReferenceData,
    Unavailable,
)
from dealdesk.providers.http import key_fingerprint

logger = logging.getLogger("dealdesk.deals")

MAX_CALLS_PER_SOURCE = 5  # upstream list calls per source per page before a short page
UPSTREAM_MAX_LIMIT = 100  # both APIs cap a list page at 100 rows
FILTERED_FETCH_FACTOR = 3  # rows asked per row needed when local filtering may drop rows
HISTORY_DEPTH = 20  # earlier pages kept in a cursor; beyond that, Previous goes to page one
SNAPSHOT_MAX_ROWS = 1000  # per source, for sorts no upstream can do
SNAPSHOT_TTL = 60
CURSOR_VERSION = 1
END = "end"

SORTS = ("-updated", "updated", "name", "-name", "value", "-value")
SNAPSHOT_SORTS = ("name", "-name")
# nodestash sorts by value upstream (../shared/api/nodestash.md §5); Stora's value_estimate is
# free text (../shared/api/stora.md §11.3), so its deals follow every numeric value.
NATIVE_VALUE_SORT = frozenset({"nodestash"})


# --- Public dataclasses (re-exported by dealdesk.deals.services) -----------------------------


@dataclass(frozen=True)
class DealFilters:
    q: str = ""  # text search on name
    status: str = ""  # "" | open | won | lost
    source: str = ""  # "" | connection slug
    stage: str = ""  # "" | stage id (only meaningful with a single source)
    sort: str = "-updated"  # -updated | updated | name | -name | value | -value
    stale: bool = False  # only open deals idle past their stage's threshold (``stale.py``)

    @classmethod
    def from_querydict(cls, data) -> DealFilters:
        """Tolerant: a missing or unknown value becomes the default."""

        def text(name: str, limit: int) -> str:
            value = data.get(name, "") if data is not None else ""
            return str(value or "").strip()[:limit]

        status = text("status", 10)
        sort = text("sort", 10)
        stale = text("stale", 5).lower() in ("1", "true", "on", "yes")
        return cls(
            q=text("q", 200),
            status=status if status in STATUSES else "",
            source=_token(text("source", 40)),
            stage=_token(text("stage", 100)),
            sort=sort if sort in SORTS else "-updated",
            stale=stale,
        )

    def to_querystring(self, **overrides: Any) -> str:
        """``q=..&status=..``: only the values that differ from the defaults."""
        from django.utils.http import urlencode

        values = dataclasses.replace(self, **overrides)
        defaults = DealFilters()
        pairs = []
        for item in dataclasses.fields(self):
            value = getattr(values, item.name)
            if value == getattr(defaults, item.name):
                continue
            pairs.append((item.name, "1" if value is True else value))
        return urlencode(pairs)


def _token(value: str) -> str:
    """Slugs and ids are word characters and dashes; anything else is dropped as unknown."""
    return value if all(c.isalnum() or c in "_-" for c in value) else ""


@dataclass(frozen=True)
class SourceError:
    connection_slug: str
    connection_label: str
    kind: str  # auth | forbidden | rate_limited | unavailable | not_found | error
    message: str  # plain words, e.g. "nodestash is unavailable right now."
    retry_after: int | None = None


def source_error_for(*, slug: str, label: str, error: ProviderError) -> SourceError:
    """The plain words a list page shows for one source that failed."""
    if isinstance(error, AuthenticationFailed):
        return SourceError(
            slug, label, "auth", f"{label} rejected the API key — an admin must update it."
        )
    if isinstance(error, Forbidden):
        return SourceError(
            slug,
            label,
            "forbidden",
            f"{label}'s API key lacks a permission DealDesk needs — an admin must update it.",
        )
    if isinstance(error, RateLimited):
        seconds = error.retry_after_seconds
        wait = f"try again in {seconds} s." if seconds else "try again shortly."
        if error.code == "client_rate_budget":
            message = f"DealDesk paused calls to {label} to stay under its rate limit — {wait}"
        elif error.code == QUOTA_SPENT:
            message = error.message
        else:
            message = f"{label} is rate limiting DealDesk — {wait}"
        return SourceError(slug, label, "rate_limited", message, retry_after=seconds)
    if isinstance(error, Unavailable):
        return SourceError(slug, label, "unavailable", f"{label} is unavailable right now.")
    if isinstance(error, NotFound):
        return SourceError(
            slug, label, "not_found", f"{label} could not find what DealDesk asked for."
        )
    return SourceError(slug, label, "error", f"{label} answered with an error: {error.message}")


# --- Engine input and output -----------------------------------------------------------------


@dataclass
class ListSource:
    """One enabled connection, resolved in the main thread (the database is touched there)."""

    slug: str
    label: str
    provider: str
    adapter: Provider | None  # None when the connection cannot be used (``error`` says why)
    error: SourceError | None = None


@dataclass
class ListOutcome:
    deals: list[Deal]
    errors: list[SourceError]
    refs: dict[str, ReferenceData]  # slug -> reference data fetched for this page
    start_offset: int  # rows before this page
    next_cursor: str | None
    prev_cursor: str | None
    truncated_sources: list[str] = field(default_factory=list)


def list_page(
    *, sources: Sequence[ListSource], filters: DealFilters, cursor: str | None, page_size: int
) -> ListOutcome:
    fingerprint = _filters_fingerprint(filters)
    state = decode_cursor(cursor, fingerprint=fingerprint)
    stale = stale_thresholds() if filters.stale else None  # the database, in this thread only
    if filters.sort in SNAPSHOT_SORTS:
        return _snapshot_page(sources, filters, state, page_size, fingerprint, stale)
    return _stream_page(sources, filters, state, page_size, fingerprint, stale)


# --- Local re-check and ordering -------------------------------------------------------------


def deal_matches(deal: Deal, filters: DealFilters, stale: StaleThresholds | None = None) -> bool:
    """``stale``: the thresholds for ``filters.stale`` (the defaults when not given)."""
    if filters.stale and not (stale or StaleThresholds()).is_stale(deal):
        return False
    if filters.q and filters.q.casefold() not in (deal.name or "").casefold():
        return False
    if filters.status and deal.status != filters.status:
        return False
    if filters.source and deal.connection_slug != filters.source:
        return False
    return not (filters.stage and (deal.stage is None or deal.stage.id != filters.stage))


def _timestamp(deal: Deal) -> float:
    return deal.updated_at.timestamp() if deal.updated_at else 0.0


def _value_key(deal: Deal, descending: bool) -> tuple[int, Decimal]:
    if deal.value is None:
        return (1, Decimal(0))
    return (0, -deal.value.amount if descending else deal.value.amount)


MERGE_KEYS: dict[str, Callable[[Deal], Any]] = {
    "-updated": lambda d: (d.updated_at is None, -_timestamp(d)),
    "updated": lambda d: (d.updated_at is None, _timestamp(d)),
    "value": lambda d: _value_key(d, descending=False),
    "-value": lambda d: _value_key(d, descending=True),
}


def upstream_query(filters: DealFilters, provider: str) -> DealQuery:
    sort = {"-updated": "-updated_at", "updated": "updated_at"}.get(filters.sort, filters.sort)
    if filters.sort in ("value", "-value") and provider not in NATIVE_VALUE_SORT:
        sort = "-updated_at"
    if filters.sort in SNAPSHOT_SORTS:
        sort = "-updated_at"  # any stable order: the snapshot sorts by name itself
    status = filters.status or (OPEN if filters.stale else "")  # closed deals are never stale
    return DealQuery(search=filters.q, status=status, stage_id=filters.stage, sort=sort)


# --- Cursor ----------------------------------------------------------------------------------


@dataclass
class CursorState:
    offset: int = 0  # rows before this page
    positions: dict[str, Any] = field(default_factory=dict)  # slug -> per-source position
    history: list[list[Any]] = field(default_factory=list)  # [[offset, positions], ...]


def encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, *, fingerprint: str) -> CursorState:
    """A cursor from other filters, an old format or garbage means the first page."""
    if not cursor:
        return CursorState()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return CursorState()
    if not isinstance(payload, dict) or payload.get("v") != CURSOR_VERSION:
        return CursorState()
    if payload.get("f") != fingerprint:
        return CursorState()
    offset, positions, history = payload.get("n"), payload.get("p", {}), payload.get("h", [])
    if not isinstance(offset, int) or offset < 0 or not isinstance(positions, dict):
        return CursorState()
    if not isinstance(history, list):
        history = []
    return CursorState(offset=offset, positions=positions, history=history)


def _cursor(fingerprint: str, offset: int, positions=None, history=None) -> str:
    payload: dict[str, Any] = {"v": CURSOR_VERSION, "f": fingerprint, "n": offset}
    if positions is not None:
        payload["p"] = positions
    if history:
        payload["h"] = history
    return encode_cursor(payload)


def _filters_fingerprint(filters: DealFilters) -> str:
    data = [filters.q, filters.status, filters.source, filters.stage, filters.sort]
    if filters.stale:
        data.append("stale")
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:10]


# --- Concurrency -----------------------------------------------------------------------------


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()
POOL_WORKERS = 32


def _executor() -> ThreadPoolExecutor:
    """One long-lived pool per process (threads do not survive a fork), so worker threads and
    their cache connections are reused across pages instead of made for every page."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=POOL_WORKERS, thread_name_prefix="deal-list")
            _pool_pid = os.getpid()
        return _pool


def _run_concurrently(tasks: Sequence[Callable[[], None]]) -> None:
    """Run each task at once; a page then costs about one upstream round trip."""
    if len(tasks) == 1:
        tasks[0]()
        return
    for future in [_executor().submit(task) for task in tasks]:
        future.result()


def _guarded(source: ListSource, work: Callable[[], None], on_error) -> Callable[[], None]:
    """Turn any failure of one source into its ``SourceError``: one source never fails a page."""

    def task() -> None:
        try:
            work()
        except ProviderError as error:
            on_error(source_error_for(slug=source.slug, label=source.label, error=error))
        except Exception:  # an adapter bug on odd data must not take the other source down
            logger.exception("Listing %s failed", source.slug)
            on_error(
                SourceError(
                    source.slug,
                    source.label,
                    "error",
                    f"{source.label} sent data DealDesk could not read.",
                )
            )

    return task


# --- Streaming sorts -------------------------------------------------------------------------


class _Stream:
    """One source's rows for this page, and where the source stands upstream."""

    def __init__(
        self,
        source: ListSource,
        position: Any,
        order: int,
        filters: DealFilters,
        stale: StaleThresholds | None = None,
    ):
        self.source = source
        self.order = order
        self.filters = filters
        self.stale = stale
        self.offset_mode = hasattr(source.adapter, "list_deals_at")
        self.rows: list[Deal] = []  # the current upstream chunk, after any skip
        self.chunk_position: Any = position  # position of rows[0]
        self.after_chunk: Any = self._valid(position)  # position after the chunk, or END
        self.index = 0
        self.calls = 0
        self.ref: ReferenceData | None = None
        self.ref_refreshed = False
        self.error: SourceError | None = source.error
        self.query = upstream_query(filters, source.provider)

    def _valid(self, position: Any) -> Any:
        if position == END:
            return END
        if self.offset_mode:
            ok = isinstance(position, dict) and isinstance(position.get("o"), int)
            return position if ok and position["o"] >= 0 else {"o": 0}
        ok = (
            isinstance(position, dict)
            and isinstance(position.get("c"), str | None)
            and isinstance(position.get("k"), int)
            and position["k"] >= 0
        )
        return position if ok else {"c": None, "k": 0}

    @property
    def live(self) -> bool:
        return self.error is None and self.source.adapter is not None

    @property
    def at_end(self) -> bool:
        return self.head() is None and self.after_chunk == END

    def head(self) -> Deal | None:
        while self.index < len(self.rows) and not deal_matches(
            self.rows[self.index], self.filters, self.stale
        ):
            self.index += 1  # a row the filters drop is consumed as well
        return self.rows[self.index] if self.index < len(self.rows) else None

    def take(self) -> Deal:
        deal = self.rows[self.index]
        self.index += 1
        return deal

    def position(self) -> Any:
        if self.index >= len(self.rows):
            return self.after_chunk
        if self.offset_mode:
            return {"o": self.chunk_position["o"] + self.index}
        return {"c": self.chunk_position["c"], "k": self.chunk_position["k"] + self.index}

    def fetch(self, wanted: int) -> None:
        """Fetch the chunk after the current one (runs in a worker thread)."""
        adapter = self.source.adapter
        if self.ref is None:
            self.ref = reference_get(adapter=adapter)
        if self.filters.stage and self.ref.stage(self.filters.stage) is None:
            self.rows, self.index, self.after_chunk = [], 0, END  # not a stage of this source
            return
        position = self.after_chunk
        self._fetch_at(position, wanted)
        unknown_stage = reference_unknown_stage(self.ref, self.rows)
        if unknown_stage and not self.ref_refreshed:
            self.ref_refreshed = True
            fresh = reference_refresh_for_unknown_stage(adapter=adapter, stage_id=unknown_stage)
            if fresh is not None:
                self.ref = fresh
                self._fetch_at(position, wanted)

    def _fetch_at(self, position: dict[str, Any], wanted: int) -> None:
        adapter = self.source.adapter
        self.calls += 1
        if self.offset_mode:
            limit = min(UPSTREAM_MAX_LIMIT, wanted)
            page = adapter.list_deals_at(
                self.query, ref=self.ref, offset=position["o"], limit=limit
            )
            rows = list(page.deals)
            after = position["o"] + len(rows)
            more = bool(rows) and (page.total > after if page.total is not None else True)
            if page.total is None and len(rows) < limit:
                more = False
            self.rows, self.chunk_position = rows, position
            self.after_chunk = {"o": after} if more else END
        else:
            skip = position["k"]
            # ASSUMED (N-A8): a nodestash cursor marks a place in the list whatever the limit, so
            # the page after a partly used one is that cursor again, skipping the rows already
            # shown. Where a cursor keeps its page size, the adapter falls back to that size.
            limit = min(UPSTREAM_MAX_LIMIT, skip + wanted)
            page = adapter.list_deals(self.query, ref=self.ref, cursor=position["c"], limit=limit)
            self.rows, self.chunk_position = list(page.deals)[skip:], position
            self.after_chunk = {"c": page.next_cursor, "k": 0} if page.next_cursor else END
        self.index = 0


def _stream_page(
    sources: Sequence[ListSource],
    filters: DealFilters,
    state: CursorState,
    page_size: int,
    fingerprint: str,
    stale: StaleThresholds | None = None,
) -> ListOutcome:
    streams = [
        _Stream(source, state.positions.get(source.slug), order, filters, stale)
        for order, source in enumerate(sources)
    ]
    narrowed = filters.q or filters.status or filters.stage or filters.stale
    factor = FILTERED_FETCH_FACTOR if narrowed else 1
    merge_key = MERGE_KEYS[filters.sort]
    deals: list[Deal] = []
    while len(deals) < page_size:
        hungry = [s for s in streams if s.live and s.head() is None and not s.at_end]
        if hungry:
            if any(s.calls >= MAX_CALLS_PER_SOURCE for s in hungry):
                break  # a short page; the next cursor continues from here
            wanted = (page_size - len(deals)) * factor
            _run_concurrently(
                [
                    _guarded(s.source, functools.partial(s.fetch, wanted), _error_setter(s))
                    for s in hungry
                ]
            )
            continue
        ready = [s for s in streams if s.live and s.head() is not None]
        if not ready:
            break
        best = min(ready, key=lambda s: (merge_key(s.head()), s.order))
        deals.append(best.take())

    positions = {s.source.slug: s.position() for s in streams}
    has_more = any(s.live and not s.at_end for s in streams)
    history = [*state.history, [state.offset, state.positions]][-HISTORY_DEPTH:]
    next_cursor = (
        _cursor(fingerprint, state.offset + len(deals), positions, history) if has_more else None
    )
    return ListOutcome(
        deals=deals,
        errors=[s.error for s in streams if s.error is not None],
        refs={s.source.slug: s.ref for s in streams if s.ref is not None},
        start_offset=state.offset,
        next_cursor=next_cursor,
        prev_cursor=_prev_cursor(state, fingerprint),
    )


def _error_setter(stream: _Stream):
    def set_error(error: SourceError) -> None:
        stream.error = error

    return set_error


def _prev_cursor(state: CursorState, fingerprint: str) -> str | None:
    if not state.history:
        return "" if state.offset > 0 else None  # history ran out: Previous goes to page one
    offset, positions = state.history[-1][0], state.history[-1][1]
    if offset == 0 and not positions:
        return ""
    return _cursor(fingerprint, offset, positions, state.history[:-1])


# --- Snapshot sorts (name) -------------------------------------------------------------------


@dataclass
class _SourceSnapshot:
    deals: list[Deal] = field(default_factory=list)
    ref: ReferenceData | None = None
    error: SourceError | None = None
    truncated: bool = False


def _snapshot_page(
    sources: Sequence[ListSource],
    filters: DealFilters,
    state: CursorState,
    page_size: int,
    fingerprint: str,
    stale: StaleThresholds | None = None,
) -> ListOutcome:
    cache_key = "dealdesk:list-snapshot:" + key_fingerprint(
        json.dumps([fingerprint, [_source_identity(s) for s in sources]])
    )
    cached = cache.get(cache_key)
    refs: dict[str, ReferenceData] = {}
    unusable = [s.error for s in sources if s.error is not None]  # known before any call
    errors: list[SourceError] = []
    if isinstance(cached, tuple) and len(cached) == 2:
        ordered, truncated = cached
    else:
        ordered, truncated, refs, errors = _build_snapshot(sources, filters, stale)
        if not errors:  # a source that failed now may answer on the next page: no snapshot
            cache.set(cache_key, (ordered, truncated), timeout=SNAPSHOT_TTL)
    errors = unusable + errors
    offset = min(state.offset, len(ordered))
    deals = ordered[offset : offset + page_size]
    end = offset + len(deals)
    next_cursor = _cursor(fingerprint, end) if end < len(ordered) else None
    if offset == 0:
        prev_cursor = None
    elif offset - page_size <= 0:
        prev_cursor = ""
    else:
        prev_cursor = _cursor(fingerprint, offset - page_size)
    return ListOutcome(
        deals=deals,
        errors=errors,
        refs=refs,
        start_offset=offset,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
        truncated_sources=truncated,
    )


def _source_identity(source: ListSource) -> str:
    if source.adapter is None:
        return f"{source.slug}:unusable"
    connection = source.adapter.connection
    return f"{source.slug}:{key_fingerprint(connection.base_url + '|' + connection.api_key)}"


def _build_snapshot(
    sources: Sequence[ListSource], filters: DealFilters, stale: StaleThresholds | None = None
):
    snapshots = {source.slug: _SourceSnapshot() for source in sources}

    def collect(source: ListSource) -> None:
        snapshot = snapshots[source.slug]
        adapter = source.adapter
        snapshot.ref = reference_get(adapter=adapter)
        if filters.stage and snapshot.ref.stage(filters.stage) is None:
            return
        query = upstream_query(filters, source.provider)
        cursor: str | None = None
        rows: list[Deal] = []
        while True:
            page = adapter.list_deals(
                query, ref=snapshot.ref, cursor=cursor, limit=UPSTREAM_MAX_LIMIT
            )
            rows.extend(page.deals)
            cursor = page.next_cursor
            if cursor is None:
                break
            if len(rows) >= SNAPSHOT_MAX_ROWS:
                snapshot.truncated = True
                logger.warning(
                    "Sorting %s by name uses only its first %d matching deals",
                    source.slug,
                    SNAPSHOT_MAX_ROWS,
                )
                break
        # ``raw`` is the vendor JSON: a brief cached list does not need it.
        snapshot.deals = [
            dataclasses.replace(deal, raw={}) for deal in rows if deal_matches(deal, filters, stale)
        ]

    def set_error(slug: str):
        def setter(error: SourceError) -> None:
            snapshots[slug].error = error
            snapshots[slug].deals = []

        return setter

    usable = [s for s in sources if s.adapter is not None and s.error is None]
    _run_concurrently([_guarded(s, lambda s=s: collect(s), set_error(s.slug)) for s in usable])
    merged = [deal for snapshot in snapshots.values() for deal in snapshot.deals]
    merged.sort(key=lambda d: ((d.name or "").casefold(), d.name or "", d.key))
    if filters.sort.startswith("-"):
        merged.reverse()
    errors = [s.error for s in snapshots.values() if s.error is not None]
    truncated = [slug for slug, s in snapshots.items() if s.truncated]
    refs = {slug: s.ref for slug, s in snapshots.items() if s.ref is not None}
    return merged, truncated, refs, errors
