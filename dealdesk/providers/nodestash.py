"""nodestash API v1 adapter: nodestash JSON <-> DealDesk's ``Deal``.

Reference: ../shared/api/nodestash.md. nodestash has no status field: a deal's status is the
``type`` of its stage (§8), and every state change is a PATCH of ``stage_id`` (§3, §7).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from django.core.cache import cache

from dealdesk.providers.assumptions import Assumption, AssumptionLog, AssumptionStatus
from dealdesk.providers.base import (
    LOST,
    OPEN,
    QUOTA_SPENT,
    WON,
    AuthenticationFailed,
    Choice,
    Conflict,
    ConnectionInfo,
    ContactInfo,
    DailyQuota,
    Deal,
    DealActions,
    DealLink,
    DealPage,
    DealQuery,
    EditableField,
    Forbidden,
    Money,
    NotFound,
    Pipeline,
    PlaceInfo,
    ProviderError,
    RateLimited,
    Ref,
    ReferenceData,
    Stage,
    Unavailable,
    ValidationFailed,
    parse_timestamp,
)
from dealdesk.providers.http import ApiResponse, ApiTransport, RateBudget, key_fingerprint

# --- ASSUMED behaviours (../shared/api/nodestash.md §16): each one lives here and only here ----
# A read that relies on one has a fallback, named next to it (``N_A1``…): when nodestash proves
# the guess wrong, the adapter uses the fallback and records it (``assumptions.py``; the admin's
# connection page lists them).

# N-A1: ``include`` embeds each object's flat attributes under attributes.<key>, or null.
N_A1_INCLUDE = "contact,company,pipeline,stage"
N_A1_KEYS = ("contact", "company", "pipeline", "stage")
N_A1 = Assumption(
    "N-A1",
    "include shape",
    "DealDesk unwraps the attributes of each embedded {id, type, attributes} object",
)
# N-A2: PATCH ``tags`` replaces the whole list, so we always send the full list.
N_A2_TAGS_REPLACE = True
# N-A3: PATCH with null clears a nullable field (value, expected_close_date).
N_A3_NULL_CLEARS = True
# N-A4: a stage outside the deal's current pipeline is a 400 with details[].field "stage_id".
N_A4_STAGE_FIELD = "stage_id"
# N-A5: owner_id has no users endpoint behind it: Deal.owner stays None, no field writes it.
N_A5_OWNER_READ_ONLY = True
# N-A6: the Idempotency-Key header is honoured on PATCH, so writes send one.
N_A6_IDEMPOTENT_PATCH = True
# N-A7: PATCH accepts expected_close_date (and currency, contact_id, company_id).
N_A7_EXTRA_PATCH_FIELDS = ("currency", "contact_id", "company_id", "expected_close_date")
# N-A6 also covers POST: a create carries the Idempotency-Key of the rendered form, so a double
# submit that reaches nodestash twice is answered with the first deal (§12, §19).
N_A6_IDEMPOTENT_POST = True
# N-A8: a cursor keeps working when ``limit`` changes between pages (§20).
N_A8 = Assumption(
    "N-A8",
    "cursor with another limit",
    "DealDesk follows each cursor with the page size it was issued with (pages may come back "
    "shorter or longer than asked)",
)
ASSUMPTIONS = (N_A1, N_A8)

# --- Plain vendor facts -------------------------------------------------------------------------

PROVIDER = "nodestash"
STAGES_CURSOR = "stages:"  # our cursor over several stage_id queries (won and lost lists)
# Path ids must match their prefix, "dl_" for deals (§1, CONFIRMED); a crafted id never reaches a
# URL path.
DEAL_ID_PATTERN = re.compile(r"dl_[A-Za-z0-9]{1,64}")
PAGE_LIMIT = 100  # the documented maximum; always sent (§14 pitfall 3)
MAX_REFERENCE_PAGES = 20
DEFAULT_BURST_LIMIT = 5  # Free plan; replaced by X-RateLimit-Burst-Limit once seen (§11)
MAX_TITLE_LENGTH = 300
DEFAULT_CURRENCY = "EUR"  # §19: a deal created without a currency is in EUR
REMOVED_CONTACT = "Removed contact"
REMOVED_COMPANY = "Removed company"
UNKNOWN_STATUS = "unknown"

# Our field names -> nodestash's, for writes and for the field of a 400's details[].
FIELD_TO_NODESTASH = {
    "name": "title",
    "value": "value",
    "tags": "tags",
    "expected_close_date": "expected_close_date",
}
NODESTASH_TO_FIELD = {
    "title": "name",
    "value": "value",
    "tags": "tags",
    "expected_close_date": "expected_close_date",
    N_A4_STAGE_FIELD: "stage",
    "pipeline_id": "stage",  # a create picks the pipeline with its stage
    "currency": "currency",
    "contact_id": "contact",
    "company_id": "company",
    "cursor": "cursor",  # a list query's cursor (N-A8)
}
SORT_UPSTREAM = {
    "-updated_at": "-updated_at",
    "updated_at": "updated_at",
    "value": "value",
    "-value": "-value",
}
DEFAULT_SORT = "-updated_at"  # name sorts cannot be done upstream; the service sorts locally

_SCOPE_RE = re.compile(r"\b([a-z_]+:(?:read|write)|\*)")


def burst_cache_key(api_key: str) -> str:
    return f"dealdesk:nodestash:burst-limit:{key_fingerprint(api_key)}"


def daily_quota_cache_key(api_key: str) -> str:
    """The daily quota as the last answer reported it (the sync paces itself by it)."""
    return f"dealdesk:nodestash:daily-quota:{key_fingerprint(api_key)}"


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    return int(raw) if raw and raw.strip().isdigit() else None


def quota_cache_key(api_key: str) -> str:
    """When set: the epoch the spent daily quota resets at (§11, per workspace)."""
    return f"dealdesk:nodestash:quota-spent:{key_fingerprint(api_key)}"


# --- Errors -------------------------------------------------------------------------------------


def map_error(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    request_id: str,
    *,
    label: str = PROVIDER,
) -> ProviderError:
    """Branch on HTTP status and ``error.code`` only; ``message`` is display text (§14.1)."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "")
    message = error["message"] if isinstance(error.get("message"), str) else ""
    common: dict[str, Any] = {
        "connection_label": label,
        "status": status,
        "code": code,
        "request_id": request_id,
    }
    if status in (400, 422):
        return ValidationFailed(
            f"{label} refused the change: {message}" if message else None,
            field_errors=_field_errors(error.get("details"), message),
            **common,
        )
    if status == 401:
        if code == "MISSING_AUTH":
            text = f"{label} received no API key. An admin must check the connection."
        else:
            text = f"{label} rejected the API key. An admin must update it."
        return AuthenticationFailed(text, **common)
    if status == 403:
        scope = _SCOPE_RE.search(message)
        needed = f" the scope {scope.group(1)}" if scope else " a scope DealDesk needs"
        return Forbidden(f"The {label} API key lacks{needed}. An admin must update it.", **common)
    if status == 404:
        return NotFound(f"Not found in {label}.", **common)
    if status == 409:
        return Conflict(message or None, **common)
    if status == 429:
        retry_after = _seconds(headers.get("Retry-After")) or _seconds(error.get("retry_after"))
        wait = f" Try again in {max(1, round(retry_after))} s." if retry_after else ""
        return RateLimited(
            f"{label} is rate limiting DealDesk.{wait}", retry_after=retry_after, **common
        )
    return Unavailable(f"{label} is unavailable right now.", **common)


def _field_errors(details: Any, message: str) -> dict[str, list[str]]:
    field_errors: dict[str, list[str]] = {}
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        ours = NODESTASH_TO_FIELD.get(str(detail.get("field") or ""), "__all__")
        text = detail.get("message")
        field_errors.setdefault(ours, []).append(str(text) if text else "Invalid value.")
    if not field_errors:
        field_errors["__all__"] = [message or "The change was refused."]
    return field_errors


def _seconds_until_epoch(raw: Any) -> float | None:
    """Seconds until a Unix time in a header (within two days), or None."""
    try:
        seconds = float(str(raw).strip()) - time.time()
    except (TypeError, ValueError):
        return None
    return seconds if 0 < seconds < 86400 * 2 else None


def _duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _seconds(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < 86400 * 2 else None


# --- Parsing helpers (never crash on odd types) -------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _money(value: Any, currency: Any) -> Money | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return Money(amount, currency.upper() if isinstance(currency, str) and currency else "EUR")


def _position(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _stage(raw: Any, pipeline_id: str | None) -> Stage | None:
    if not isinstance(raw, dict) or not _text(raw.get("id")):
        return None
    stage_type = raw["type"] if raw.get("type") in (OPEN, WON, LOST) else UNKNOWN_STATUS
    return Stage(
        id=raw["id"],
        name=_text(raw.get("name")) or raw["id"],
        position=_position(raw.get("position")),
        type=stage_type,
        pipeline_id=pipeline_id,
    )


def _pipeline(raw: Any) -> Pipeline | None:
    if not isinstance(raw, dict) or not _text(raw.get("id")):
        return None
    stages = raw["stages"] if isinstance(raw.get("stages"), list) else []
    parsed = tuple(s for s in (_stage(item, raw["id"]) for item in stages) if s is not None)
    return Pipeline(id=raw["id"], name=_text(raw.get("name")) or raw["id"], stages=parsed)


def _contact_name(raw: dict[str, Any]) -> str:
    full = " ".join(p for p in (_text(raw.get("first_name")), _text(raw.get("last_name"))) if p)
    return full or _text(raw.get("email")) or str(raw.get("id"))


def _attributes(resource: Any) -> dict[str, Any] | None:
    if not isinstance(resource, dict):
        return None
    attributes = resource.get("attributes")
    if not isinstance(attributes, dict):
        return None
    if not _text(attributes.get("id")) and _text(resource.get("id")):
        attributes = {**attributes, "id": resource["id"]}
    return attributes if _text(attributes.get("id")) else None


def _json_number(amount: Any) -> int | float:
    """A Decimal as a JSON number nodestash reads back exactly (§7: number in, string out)."""
    try:
        decimal = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation:
        raise ValidationFailed(field_errors={"value": ["Enter a number."]}) from None
    if not decimal.is_finite():
        raise ValidationFailed(field_errors={"value": ["Enter a number."]})
    if decimal == decimal.to_integral_value():
        return int(decimal)
    return float(decimal)  # two decimal places survive the float round trip


# --- Cursors over several stages (won and lost lists) ------------------------------------------


def _split_cursor(cursor: str | None) -> tuple[int | None, str | None]:
    """Our ``"<limit>:<upstream cursor>"`` -> (limit, upstream); a bare cursor has no limit."""
    if not cursor:
        return None, None
    head, separator, rest = cursor.partition(":")
    if separator and head.isdigit() and rest:
        return int(head), rest
    return None, cursor


class _StageChunk:
    """One stage's fetched rows on this page and where that stage stands upstream."""

    def __init__(
        self, deals: list[Deal], cursor: str | None, skip: int, next_cursor: str | None
    ) -> None:
        self.deals, self.cursor, self.skip, self.next_cursor = deals, cursor, skip, next_cursor
        self.index = 0

    @property
    def exhausted(self) -> bool:
        return self.index >= len(self.deals)

    @property
    def head(self) -> Deal:
        return self.deals[self.index]

    def position(self) -> list[Any] | None:
        if not self.exhausted:
            return [self.cursor, self.skip + self.index]
        return [self.next_cursor, 0] if self.next_cursor else None


def _encode_stage_positions(positions: dict[str, Any]) -> str:
    raw = json.dumps(positions, separators=(",", ":"), sort_keys=True).encode()
    return STAGES_CURSOR + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_stage_positions(cursor: str | None, stage_ids: list[str]) -> dict[str, Any]:
    """Each stage's ``[upstream cursor, rows to skip]``, or None once it is done; a missing or
    unreadable cursor starts every stage from the top."""
    start: dict[str, Any] = {stage_id: [None, 0] for stage_id in stage_ids}
    if not cursor or not cursor.startswith(STAGES_CURSOR):
        return start
    encoded = cursor[len(STAGES_CURSOR) :]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return start
    if not isinstance(decoded, dict):
        return start
    positions: dict[str, Any] = {}
    for stage_id in stage_ids:
        position = decoded.get(stage_id, [None, 0])
        valid = (
            isinstance(position, list)
            and len(position) == 2
            and isinstance(position[0], str | None)
            and isinstance(position[1], int)
            and position[1] >= 0
        )
        positions[stage_id] = position if valid else None
    return positions


def _merge_key(sort: str) -> Callable[[Deal], tuple[bool, Any]]:
    """The order nodestash lists in (§5; the sandbox puts nulls last both ways), for merging."""
    descending, name = sort.startswith("-"), sort.lstrip("-")

    def key(deal: Deal) -> tuple[bool, Any]:
        if name == "value":
            amount = deal.value.amount if deal.value else None
            return (amount is None, -amount if descending and amount is not None else amount or 0)
        moment = deal.updated_at if name == "updated_at" else deal.created_at
        stamp = moment.timestamp() if moment else 0.0
        return (moment is None, -stamp if descending else stamp)

    return key


# --- Adapter ------------------------------------------------------------------------------------


class NodestashAdapter:
    """One nodestash workspace (one API key). Every method may raise a ``ProviderError``."""

    def __init__(self, connection: ConnectionInfo) -> None:
        self.connection = connection
        self.label = connection.label or PROVIDER
        burst = cache.get(burst_cache_key(connection.api_key)) or DEFAULT_BURST_LIMIT
        self.budget = RateBudget(
            scope=f"nodestash:{key_fingerprint(connection.api_key)}", limits=[(burst, 1)]
        )
        self.transport = ApiTransport(
            connection,
            error_mapper=functools.partial(map_error, label=self.label),
            budget=self.budget,
            before_request=self._refuse_when_quota_spent,
            on_headers=self._learn_limits,
        )
        self.assumptions = AssumptionLog(connection, ASSUMPTIONS)

    def assumption_report(self) -> list[AssumptionStatus]:
        return self.assumptions.report()

    @staticmethod
    def is_deal_id(deal_id: str) -> bool:
        """Could this be a nodestash deal id? Anything else is never sent upstream."""
        return DEAL_ID_PATTERN.fullmatch(str(deal_id)) is not None

    @property
    def last_request_id(self) -> str:
        return self.transport.last_request_id

    def lost_choices(self, pipeline: Pipeline, *, ref: ReferenceData) -> tuple[Choice, ...]:
        """A nodestash deal is lost by moving it to one of its pipeline's lost stages."""
        return tuple(Choice(s.id, s.name) for s in pipeline.stages_of_type(LOST) if s.id)

    # --- HTTP -----------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        return self.transport.request(method, path, **kwargs)

    def daily_quota(self) -> DailyQuota | None:
        quota = cache.get(daily_quota_cache_key(self.connection.api_key))
        return quota if isinstance(quota, DailyQuota) else None

    def _learn_limits(self, headers: Mapping[str, str]) -> None:
        """§11, §18, from every answer: the plan's burst limit (later budgets use it), the
        daily quota (the sync paces itself by it), and a daily quota at 0 (no more calls until
        ``X-RateLimit-Reset``)."""
        limit = _header_int(headers, "X-RateLimit-Limit")
        left = _header_int(headers, "X-RateLimit-Remaining")
        resets_at = _header_int(headers, "X-RateLimit-Reset")
        if limit and left is not None and resets_at:
            cache.set(
                daily_quota_cache_key(self.connection.api_key),
                DailyQuota(limit, left, float(resets_at)),
                timeout=2 * 86400,
            )
        raw = headers.get("X-RateLimit-Burst-Limit")
        if raw and raw.strip().isdigit() and int(raw) > 0:
            cache.set(burst_cache_key(self.connection.api_key), int(raw), timeout=None)
        remaining = (headers.get("X-RateLimit-Remaining") or "").strip()
        reset = _seconds_until_epoch(headers.get("X-RateLimit-Reset"))
        if remaining == "0" and reset:
            cache.set(
                quota_cache_key(self.connection.api_key),
                time.time() + reset,
                timeout=math.ceil(reset) + 1,
            )

    def _refuse_when_quota_spent(self) -> None:
        resets_at = cache.get(quota_cache_key(self.connection.api_key))
        if not isinstance(resets_at, int | float) or resets_at <= time.time():
            return
        wait = resets_at - time.time()
        clock = dt.datetime.fromtimestamp(resets_at, dt.UTC).strftime("%H:%M")
        raise RateLimited(
            f"{self.label}'s daily request quota is used up: DealDesk makes no calls to it "
            f"until it resets at {clock} UTC (in {_duration(wait)}).",
            retry_after=wait,
            connection_label=self.label,
            code=QUOTA_SPENT,
        )

    def _unreadable(self, response: ApiResponse) -> Unavailable:
        return Unavailable(
            f"{self.label} sent a response DealDesk could not read.",
            connection_label=self.label,
            status=response.status,
            code="malformed_response",
            request_id=response.request_id,
        )

    def _one(self, response: ApiResponse) -> dict[str, Any]:
        body = response.body
        attributes = _attributes(body.get("data")) if isinstance(body, dict) else None
        if attributes is None:
            raise self._unreadable(response)
        return attributes

    def _many(self, response: ApiResponse) -> tuple[list[dict[str, Any]], str | None]:
        body = response.body
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise self._unreadable(response)
        items = [a for a in (_attributes(item) for item in data) if a is not None]
        meta = body["meta"] if isinstance(body.get("meta"), dict) else {}
        pagination = meta["pagination"] if isinstance(meta.get("pagination"), dict) else {}
        next_cursor = _text(pagination.get("next_cursor"))
        if pagination.get("has_more") is False:
            next_cursor = None
        return items, next_cursor

    def _all_pages(self, path: str) -> Iterator[dict[str, Any]]:
        cursor = None
        for _ in range(MAX_REFERENCE_PAGES):
            params: dict[str, Any] = {"limit": PAGE_LIMIT}
            if cursor:
                params["cursor"] = cursor
            items, cursor = self._many(self._request("GET", path, params=params))
            yield from items
            if not cursor:
                return

    def _deal_path(self, deal_id: str) -> str:
        if not self.is_deal_id(deal_id):
            raise NotFound(
                f"Not found in {self.label}.", connection_label=self.label, code="invalid_deal_id"
            )
        return f"/deals/{quote(str(deal_id), safe='')}"

    # --- Reads ----------------------------------------------------------------------------------

    def ping(self) -> None:
        self._request("GET", "/pipelines", params={"limit": 1})

    def reference_data(self) -> ReferenceData:
        pipelines = tuple(p for p in map(_pipeline, self._all_pages("/pipelines")) if p)
        names: dict[str, str] = {}
        contacts = []
        for contact in self._all_pages("/contacts"):
            names[contact["id"]] = _contact_name(contact)
            contacts.append(
                ContactInfo(
                    contact["id"],
                    names[contact["id"]],
                    email=_text(contact.get("email")) or "",
                    phone=_text(contact.get("phone")) or "",
                    company_id=_text(contact.get("company_id")) or "",
                )
            )
        places = []
        for company in self._all_pages("/companies"):
            names[company["id"]] = _text(company.get("name")) or company["id"]
            places.append(
                PlaceInfo(
                    company["id"],
                    names[company["id"]],
                    "company",
                    website=_text(company.get("domain")) or "",
                )
            )
        return ReferenceData(  # N-A5: no staff
            pipelines=pipelines,
            staff=(),
            names=names,
            contacts=tuple(contacts),
            places=tuple(places),
        )

    def list_deals(
        self, query: DealQuery, *, ref: ReferenceData, cursor: str | None, limit: int
    ) -> DealPage:
        limit = max(1, min(PAGE_LIMIT, int(limit)))
        params: dict[str, Any] = {"sort": SORT_UPSTREAM.get(query.sort, DEFAULT_SORT)}
        if query.pipeline_id:
            params["pipeline_id"] = query.pipeline_id
        stage_ids = [query.stage_id] if query.stage_id else self._stages_of_status(query, ref)
        if stage_ids is not None and not stage_ids:
            return DealPage((), None, total=0)  # no stage has that status
        if stage_ids is not None and len(stage_ids) > 1:
            return self._stages_page(params, stage_ids, ref, cursor, limit)
        if cursor and cursor.startswith(STAGES_CURSOR):
            cursor = None  # the stages changed since that page: start again from the top
        if stage_ids:
            params["stage_id"] = stage_ids[0]
        items, next_cursor = self._deals_page(params, cursor, limit)
        return DealPage(tuple(self._deal(raw, ref) for raw in items), next_cursor, total=None)

    @staticmethod
    def _stages_of_status(query: DealQuery, ref: ReferenceData) -> list[str] | None:
        """A status goes upstream as ``stage_id`` (§5): won and lost as one query per stage of
        that type; open only when one stage is open (else the service filters locally). None:
        ask without a stage."""
        if not query.status:
            return None
        pipelines = [ref.pipeline(query.pipeline_id)] if query.pipeline_id else ref.pipelines
        stage_ids = [
            s.id for p in pipelines if p is not None for s in p.stages_of_type(query.status) if s.id
        ]
        if query.status == OPEN and len(stage_ids) != 1:
            return None
        return stage_ids

    def _deals_page(
        self, params: dict[str, Any], cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One ``GET /deals``. Our cursor carries the limit it was issued with (N-A8 fallback:
        a cursor that must keep its page size is followed with that size)."""
        issued_limit, upstream = _split_cursor(cursor)
        if issued_limit is None:
            issued_limit = limit
        changed = upstream is not None and issued_limit != limit
        if changed and self.assumptions.fell_back(N_A8):
            limit, changed = issued_limit, False
        request = {**params, "limit": limit, **({"cursor": upstream} if upstream else {})}
        try:
            items, next_cursor = self._many(self._request("GET", "/deals", params=request))
        except ValidationFailed as error:
            if not changed or "cursor" not in error.field_errors:
                raise
            self.assumptions.fall_back(
                N_A8, f"{error.status or 400} on a cursor followed with another limit"
            )
            limit = issued_limit
            request["limit"] = limit
            items, next_cursor = self._many(self._request("GET", "/deals", params=request))
        else:
            if changed:
                self.assumptions.held(N_A8)
        return items, (f"{limit}:{next_cursor}" if next_cursor else None)

    def _stages_page(
        self,
        params: dict[str, Any],
        stage_ids: list[str],
        ref: ReferenceData,
        cursor: str | None,
        limit: int,
    ) -> DealPage:
        """The deals of several stages in one order: one query per stage, merged here. Our
        cursor keeps each stage's place (its upstream cursor and the rows already taken)."""
        positions = _decode_stage_positions(cursor, stage_ids)
        chunks: dict[str, _StageChunk] = {}
        for stage_id, position in positions.items():
            if position is None:
                continue
            stage_cursor, skip = position
            items, next_cursor = self._deals_page(
                {**params, "stage_id": stage_id}, stage_cursor, min(PAGE_LIMIT, skip + limit)
            )
            deals = [self._deal(raw, ref) for raw in items][skip:]
            chunks[stage_id] = _StageChunk(deals, stage_cursor, skip, next_cursor)
        sort_key = _merge_key(params["sort"])
        taken: list[Deal] = []
        while len(taken) < limit:
            if any(c.exhausted and c.next_cursor for c in chunks.values()):
                break  # that stage's next row is not fetched yet: the page ends short
            ready = [c for c in chunks.values() if not c.exhausted]
            if not ready:
                break
            best = min(ready, key=lambda c: (sort_key(c.head), c.head.id))
            taken.append(best.head)
            best.index += 1
        after = {
            stage_id: (chunks[stage_id].position() if stage_id in chunks else None)
            for stage_id in positions
        }
        more = any(position is not None for position in after.values())
        return DealPage(tuple(taken), _encode_stage_positions(after) if more else None, total=None)

    def get_deal(self, deal_id: str, *, ref: ReferenceData) -> Deal:
        response = self._request("GET", self._deal_path(deal_id), params={"include": N_A1_INCLUDE})
        return self._deal(self._one(response), ref, embedded=True)

    # --- Parsing --------------------------------------------------------------------------------

    def _unwrap_included(self, raw: dict[str, Any]) -> dict[str, Any]:
        """N-A1, or its fallback: objects embedded in {id, type, attributes} are unwrapped."""
        enveloped = [
            key
            for key in N_A1_KEYS
            if isinstance(raw.get(key), dict) and isinstance(raw[key].get("attributes"), dict)
        ]
        if not enveloped:
            if any(isinstance(raw.get(key), dict) for key in N_A1_KEYS):
                self.assumptions.held(N_A1)
            return raw
        self.assumptions.fall_back(N_A1, "objects came in {id, type, attributes}")
        return {**raw, **{key: _attributes(raw[key]) for key in enveloped}}

    def _deal(self, raw: dict[str, Any], ref: ReferenceData, *, embedded: bool = False) -> Deal:
        if embedded:
            raw = self._unwrap_included(raw)
        pipeline_id = _text(raw.get("pipeline_id"))
        stage_id = _text(raw.get("stage_id"))
        pipeline = ref.pipeline(pipeline_id)
        stage = ref.stage(stage_id) if stage_id else None
        if embedded:
            pipeline = _pipeline(raw.get("pipeline")) or pipeline
            stage = _stage(raw.get("stage"), pipeline_id) or stage
        if stage is not None and stage.pipeline_id is None:
            stage = Stage(stage.id, stage.name, stage.position, stage.type, pipeline_id)
        if stage is None and stage_id:
            stage = Stage(stage_id, "Unknown stage", None, UNKNOWN_STATUS, pipeline_id)
        tags = raw["tags"] if isinstance(raw.get("tags"), list) else []
        custom_fields = raw.get("custom_fields")
        return Deal(
            connection_slug=self.connection.slug,
            source_label=self.label,
            provider=PROVIDER,
            id=str(raw["id"]),
            name=raw["title"] if isinstance(raw.get("title"), str) else "",
            status=stage.type if stage else UNKNOWN_STATUS,
            stage=stage,
            pipeline=pipeline,
            value=_money(raw.get("value"), raw.get("currency")),
            owner=None,  # N-A5
            contact=self._link(raw, "contact", ref, REMOVED_CONTACT, embedded),
            company=self._link(raw, "company", ref, REMOVED_COMPANY, embedded),
            expected_close_date=_date(raw.get("expected_close_date")),
            tags=tuple(t for t in tags if isinstance(t, str)),
            custom_fields=dict(custom_fields) if isinstance(custom_fields, dict) else {},
            closed_at=parse_timestamp(raw.get("closed_at")),
            created_at=parse_timestamp(raw.get("created_at")),
            updated_at=parse_timestamp(raw.get("updated_at")),
            raw=raw,
        )

    @staticmethod
    def _link(
        raw: dict[str, Any], kind: str, ref: ReferenceData, removed: str, embedded: bool
    ) -> Ref | None:
        """A contact/company link; one that no longer resolves shows as removed (§14.10)."""
        linked_id = _text(raw.get(f"{kind}_id"))
        if linked_id is None:
            return None
        if embedded and kind in raw:
            target = raw[kind]
            if not isinstance(target, dict):
                return Ref(linked_id, removed, missing=True)
            name = _contact_name(target) if kind == "contact" else _text(target.get("name"))
            return Ref(linked_id, name or linked_id)
        if linked_id in ref.names:
            return Ref(linked_id, ref.names[linked_id])
        return Ref(linked_id, removed, missing=True)

    # --- What can be done -----------------------------------------------------------------------

    def _pipeline_of(self, deal: Deal, ref: ReferenceData) -> Pipeline | None:
        pipeline_id = deal.pipeline.id if deal.pipeline else None
        if pipeline_id is None and deal.stage is not None:
            pipeline_id = deal.stage.pipeline_id
        return ref.pipeline(pipeline_id) or deal.pipeline

    def editable_fields(self, deal: Deal, *, ref: ReferenceData) -> list[EditableField]:
        currency = deal.value.currency if deal.value else _text(deal.raw.get("currency")) or ""
        fields = [
            EditableField(
                "name", "Name", "text", deal.name, required=True, max_length=MAX_TITLE_LENGTH
            ),
            EditableField(
                "value",
                "Value",
                "number",
                deal.value.amount if deal.value else None,
                help_text=currency,
            ),
        ]
        if N_A2_TAGS_REPLACE:  # were tags merged, a tag could never be removed: not editable
            fields.append(EditableField("tags", "Tags", "tags", tuple(deal.tags)))
        if "expected_close_date" in N_A7_EXTRA_PATCH_FIELDS:
            fields.append(
                EditableField(
                    "expected_close_date", "Expected close date", "date", deal.expected_close_date
                )
            )
        return fields

    def actions(self, deal: Deal, *, ref: ReferenceData) -> DealActions:
        pipeline = self._pipeline_of(deal, ref)
        if pipeline is None:
            return DealActions()
        open_stages = pipeline.stages_of_type(OPEN)
        won_stages = pipeline.stages_of_type(WON)
        lost_stages = pipeline.stages_of_type(LOST)
        if deal.is_open:
            return DealActions(
                stage_choices=open_stages,
                can_change_stage=True,
                can_win=bool(won_stages),
                can_lose=bool(lost_stages),
                lost_stages=lost_stages,
            )
        if deal.is_closed:
            return DealActions(
                stage_choices=open_stages,
                can_change_stage=True,
                can_reopen=bool(open_stages),
                reopen_stages=open_stages,
            )
        return DealActions(stage_choices=open_stages, can_change_stage=True)

    # --- Create (§19) ---------------------------------------------------------------------------

    def create_fields(self, *, ref: ReferenceData) -> list[EditableField]:
        stages = [
            Choice(stage.id, f"{pipeline.name} › {stage.name}")
            for pipeline in ref.pipelines
            for stage in pipeline.stages_of_type(OPEN)
            if stage.id
        ]
        return [
            EditableField("name", "Title", "text", "", required=True, max_length=MAX_TITLE_LENGTH),
            EditableField("value", "Value", "number", None),
            EditableField(
                "currency",
                "Currency",
                "currency",
                DEFAULT_CURRENCY,
                max_length=3,
                help_text="A three-letter code such as EUR, USD or GBP.",
            ),
            EditableField(
                "stage",
                "Pipeline and stage",
                "select",
                stages[0].value if stages else "",
                tuple(stages),
                required=bool(stages),
            ),
            EditableField(
                "contact",
                "Contact",
                "text",
                "",
                lookup="contact",
                help_text="Type part of a name or email, then pick the contact.",
            ),
            EditableField(
                "company",
                "Company",
                "text",
                "",
                lookup="company",
                help_text="Type part of the name, then pick the company.",
            ),
            EditableField("expected_close_date", "Expected close date", "date", None),
            EditableField("tags", "Tags", "tags", ()),
        ]

    def create_deal(
        self, values: dict[str, Any], *, ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        """``POST /deals`` (§19); the stage's pipeline goes with it."""
        body: dict[str, Any] = {"title": str(values.get("name") or "").strip()}
        if values.get("value") not in (None, ""):
            body["value"] = _json_number(values["value"])
        if values.get("currency"):
            body["currency"] = str(values["currency"]).upper()
        stage = ref.stage(values.get("stage")) if values.get("stage") else None
        if values.get("stage"):
            if stage is None or stage.type != OPEN:
                raise ValidationFailed(
                    field_errors={"stage": ["Choose an open stage of one of the pipelines."]},
                    connection_label=self.label,
                )
            if stage.pipeline_id:
                body["pipeline_id"] = stage.pipeline_id
            body["stage_id"] = stage.id
        for ours, theirs in (("contact", "contact_id"), ("company", "company_id")):
            if values.get(ours):
                body[theirs] = str(values[ours])
        if values.get("expected_close_date"):
            body["expected_close_date"] = self._wire_value(
                "expected_close_date", values["expected_close_date"]
            )
        if values.get("tags"):
            body["tags"] = self._wire_value("tags", values["tags"])
        response = self._request(
            "POST",
            "/deals",
            json=body,
            idempotency_key=idempotency_key if N_A6_IDEMPOTENT_POST else None,
        )
        return self._deal(self._one(response), ref)

    def deal_links(self, deal: Deal, *, ref: ReferenceData) -> tuple[DealLink, ...]:
        return ()  # §1: nodestash documents no links into its app

    # --- Writes ---------------------------------------------------------------------------------

    def _patch(
        self, deal_id: str, body: dict[str, Any], ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        response = self._request(
            "PATCH",
            self._deal_path(deal_id),
            json=body,
            idempotency_key=idempotency_key if N_A6_IDEMPOTENT_PATCH else None,
        )
        return self._deal(self._one(response), ref)

    def update_deal(
        self,
        deal_id: str,
        changes: dict[str, Any],
        *,
        ref: ReferenceData,
        idempotency_key: str,
        current: Deal | None = None,
    ) -> Deal:
        body: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in FIELD_TO_NODESTASH:
                raise ValidationFailed(
                    f"{self.label} deals have no editable field {name!r}.",
                    field_errors={"__all__": [f"{name} cannot be edited here."]},
                )
            body[FIELD_TO_NODESTASH[name]] = self._wire_value(name, value)
        return self._patch(deal_id, body, ref, idempotency_key)

    @staticmethod
    def _wire_value(name: str, value: Any) -> Any:
        if value is None or value == "":
            if name == "name" or not N_A3_NULL_CLEARS:
                raise ValidationFailed(field_errors={name: ["This field cannot be empty."]})
            return None  # N-A3: null clears value and expected_close_date
        if name == "value":
            return _json_number(value)
        if name == "tags":  # N-A2: the full list replaces the old one
            tags = value.split(",") if isinstance(value, str) else value
            return [str(tag).strip() for tag in tags if str(tag).strip()]
        if name == "expected_close_date":
            return value.isoformat() if isinstance(value, dt.date) else str(value)
        return str(value)

    def change_stage(
        self, deal: Deal, stage_id: str, *, ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        pipeline = self._pipeline_of(deal, ref)
        if pipeline is not None and not any(s.id == stage_id for s in pipeline.stages):
            raise ValidationFailed(
                field_errors={"stage": ["Choose a stage of this deal's pipeline."]},
                connection_label=self.label,
            )
        return self._patch(deal.id, {"stage_id": stage_id}, ref, idempotency_key)

    def mark_won(self, deal: Deal, *, ref: ReferenceData, idempotency_key: str) -> Deal:
        pipeline = self._pipeline_of(deal, ref)
        won_stages = pipeline.stages_of_type(WON) if pipeline else ()
        if not won_stages:
            raise ValidationFailed(
                field_errors={"__all__": ["This deal's pipeline has no won stage."]},
                connection_label=self.label,
            )
        return self._patch(deal.id, {"stage_id": won_stages[0].id}, ref, idempotency_key)

    def mark_lost(
        self, deal: Deal, reason: str, *, ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        """``reason`` is the id of one of the pipeline's lost stages (there may be several)."""
        pipeline = self._pipeline_of(deal, ref)
        lost_stages = pipeline.stages_of_type(LOST) if pipeline else ()
        if not reason and len(lost_stages) == 1:
            reason = lost_stages[0].id or ""
        if not any(s.id == reason for s in lost_stages):
            raise ValidationFailed(
                field_errors={"lost_stage": ["Choose one of this pipeline's lost stages."]},
                connection_label=self.label,
            )
        return self._patch(deal.id, {"stage_id": reason}, ref, idempotency_key)

    def reopen(
        self,
        deal: Deal,
        *,
        stage_id: str | None,
        assignee_id: str | None,  # nodestash has no assignee to set (N-A5)
        ref: ReferenceData,
        idempotency_key: str,
    ) -> Deal:
        pipeline = self._pipeline_of(deal, ref)
        open_stages = pipeline.stages_of_type(OPEN) if pipeline else ()
        target = stage_id or (open_stages[0].id if open_stages else None)
        if not any(s.id == target for s in open_stages):
            raise ValidationFailed(
                field_errors={"stage": ["Choose an open stage of this deal's pipeline."]},
                connection_label=self.label,
            )
        return self._patch(deal.id, {"stage_id": target}, ref, idempotency_key)
