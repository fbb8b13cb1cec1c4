"""nodestash API v1 adapter: nodestash JSON <-> DealDesk's ``Deal``.

Reference: ../shared/api/nodestash.md. nodestash has no status field: a deal's status is the
``type`` of its stage (§8), and every state change is a PATCH of ``stage_id`` (§3, §7).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from django.core.cache import cache

from dealdesk.providers.base import (
    LOST,
    OPEN,
    WON,
    AuthenticationFailed,
    Conflict,
    ConnectionInfo,
    Deal,
    DealActions,
    DealPage,
    DealQuery,
    EditableField,
    Forbidden,
    Money,
    NotFound,
    Pipeline,
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

# N-A1: ``include`` embeds each object's flat attributes under attributes.<key>, or null.
N_A1_INCLUDE = "contact,company,pipeline,stage"
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

# --- Plain vendor facts -------------------------------------------------------------------------

PROVIDER = "nodestash"
# Path ids must match their prefix, "dl_" for deals (§1, CONFIRMED); a crafted id never reaches a
# URL path.
DEAL_ID_PATTERN = re.compile(r"dl_[A-Za-z0-9]{1,64}")
PAGE_LIMIT = 100  # the documented maximum; always sent (§14 pitfall 3)
MAX_REFERENCE_PAGES = 20
DEFAULT_BURST_LIMIT = 5  # Free plan; replaced by X-RateLimit-Burst-Limit once seen (§11)
MAX_TITLE_LENGTH = 300
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
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    common = {"connection_label": label, "status": status, "code": code, "request_id": request_id}
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
    stage_type = raw.get("type") if raw.get("type") in (OPEN, WON, LOST) else UNKNOWN_STATUS
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
    stages = raw.get("stages") if isinstance(raw.get("stages"), list) else []
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
        )

    # --- HTTP -----------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        response = self.transport.request(method, path, **kwargs)
        self._learn_burst_limit(response.headers)
        return response

    def _learn_burst_limit(self, headers: Mapping[str, str]) -> None:
        """§11: read the plan's burst limit from the headers; later budgets use it."""
        raw = headers.get("X-RateLimit-Burst-Limit")
        if raw and raw.strip().isdigit() and int(raw) > 0:
            cache.set(burst_cache_key(self.connection.api_key), int(raw), timeout=None)

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
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        pagination = meta.get("pagination") if isinstance(meta.get("pagination"), dict) else {}
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

    @staticmethod
    def _deal_path(deal_id: str) -> str:
        return f"/deals/{quote(str(deal_id), safe='')}"

    # --- Reads ----------------------------------------------------------------------------------

    def ping(self) -> None:
        self._request("GET", "/pipelines", params={"limit": 1})

    def reference_data(self) -> ReferenceData:
        pipelines = tuple(p for p in map(_pipeline, self._all_pages("/pipelines")) if p)
        names: dict[str, str] = {}
        for contact in self._all_pages("/contacts"):
            names[contact["id"]] = _contact_name(contact)
        for company in self._all_pages("/companies"):
            names[company["id"]] = _text(company.get("name")) or company["id"]
        return ReferenceData(pipelines=pipelines, staff=(), names=names)  # N-A5: no staff

    def list_deals(
        self, query: DealQuery, *, ref: ReferenceData, cursor: str | None, limit: int
    ) -> DealPage:
        params: dict[str, Any] = {
            "limit": max(1, min(PAGE_LIMIT, int(limit))),
            "sort": SORT_UPSTREAM.get(query.sort, DEFAULT_SORT),
        }
        if query.pipeline_id:
            params["pipeline_id"] = query.pipeline_id
        stage_id = query.stage_id or self._only_stage_of_status(query, ref)
        if stage_id:
            params["stage_id"] = stage_id
        if cursor:
            params["cursor"] = cursor
        items, next_cursor = self._many(self._request("GET", "/deals", params=params))
        return DealPage(tuple(self._deal(raw, ref) for raw in items), next_cursor, total=None)

    @staticmethod
    def _only_stage_of_status(query: DealQuery, ref: ReferenceData) -> str | None:
        """A status can go upstream only as one ``stage_id``: one pipeline with one such stage.
        Otherwise the service filters status locally (§5)."""
        if not query.status or not query.pipeline_id:
            return None
        pipeline = ref.pipeline(query.pipeline_id)
        stages = pipeline.stages_of_type(query.status) if pipeline else ()
        return stages[0].id if len(stages) == 1 else None

    def get_deal(self, deal_id: str, *, ref: ReferenceData) -> Deal:
        response = self._request("GET", self._deal_path(deal_id), params={"include": N_A1_INCLUDE})
        return self._deal(self._one(response), ref, embedded=True)

    # --- Parsing --------------------------------------------------------------------------------

    def _deal(self, raw: dict[str, Any], ref: ReferenceData, *, embedded: bool = False) -> Deal:
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
        tags = raw.get("tags") if isinstance(raw.get("tags"), list) else []
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
        self, deal_id: str, changes: dict[str, Any], *, ref: ReferenceData, idempotency_key: str
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
