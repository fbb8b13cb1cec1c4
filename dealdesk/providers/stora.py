"""Stora Public API 2025-09 adapter: Stora JSON <-> DealDesk's ``Deal``.

Reference: ../shared/api/stora.md. Stora has one pipeline of stages; won/lost lives only in the
deal's ``status`` (§4), so every stage is a target for a stage change or a reopen.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from dealdesk.providers.assumptions import Assumption, AssumptionLog, AssumptionStatus
from dealdesk.providers.base import (
    LINE_ITEM_TYPES,
    LOST,
    OPEN,
    WON,
    AuthenticationFailed,
    CatalogueItem,
    Choice,
    Conflict,
    ConnectionInfo,
    ContactInfo,
    DailyQuota,
    Deal,
    DealActions,
    DealEvent,
    DealLink,
    DealPage,
    DealQuery,
    EditableField,
    Forbidden,
    LineItem,
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
    WebhookEndpoint,
    WebhookRefused,
    humanise,
    link_from_template,
    parse_timestamp,
)
from dealdesk.providers.http import ApiResponse, ApiTransport, RateBudget, key_fingerprint

# --- ASSUMED behaviours (../shared/api/stora.md §13): each one is coded here only ------------
# A read that relies on one has a fallback, named next to it (``S_A1``…): when Stora proves the
# guess wrong, the adapter uses the fallback from then on for this connection and records it
# (``assumptions.py``; the admin's connection page lists them).

# S-A1: the deals list sorts by created_at|updated_at with sort_direction ASC|DESC.
S_A1_SORT_FIELDS = {"-updated_at": ("updated_at", "DESC"), "updated_at": ("updated_at", "ASC")}
S_A1_DEFAULT_SORT = ("updated_at", "DESC")  # name/value sorts are done by the service
S_A1_SORT_PARAMS = ("sort_by", "sort_direction")
S_A1_LOCAL_SORT_MAX_PAGES = 20  # fallback: at most 2,000 deals are read and sorted per page
S_A1 = Assumption(
    "S-A1",
    "deals list sort",
    "lists come in Stora's own order and DealDesk sorts them itself, reading "
    f"every deal (up to {S_A1_LOCAL_SORT_MAX_PAGES * 100}) for each page",
)
# S-A2: the deals list filters on status, stage_id and search (our DealQuery field -> param).
S_A2_FILTER_PARAMS = {"status": "status", "stage_id": "stage_id", "search": "search"}
S_A2 = Assumption(
    "S-A2",
    "deals list filters",
    "the refused filter is no longer sent and DealDesk filters the rows itself (pages may "
    "come back shorter)",
)
# S-A3: show accepts expand=assignee,creator,contact,site,stage, replacing {id} by the object.
S_A3_EXPAND = "assignee,creator,contact,site,stage"
S_A3 = Assumption(
    "S-A3",
    "expand",
    "deals are read without expand (retried once, then never sent) and names come from the "
    "cached staff, contact and site lists",
)
# S-A4: PATCH field names; our field name -> Stora's.
S_A4_PATCH_FIELDS = {
    "name": "name",
    "note": "note",
    "starts_at": "starts_at",
    "assignee": "assignee",
}
# S-A5: PATCH {"stage": {"id"}} moves an open deal; a closed one answers 409 (reopen instead).
S_A5_STAGE_PATCH_FIELD = "stage"
# S-A6: win/lose on a closed deal and reopen on an open one answer 409 conflict.
S_A6_STATE_CONFLICT_CODE = "conflict"
# S-A7: the lost_reason enum (the fifth "contract…" value is unknown until checked).
S_A7_LOST_REASONS = (
    "accessibility_concern",
    "better_deal_elsewhere",
    "chose_competitor",
    "price_concerns",
)
# S-A8: reopen without "stage" goes to the first stage by position, so we send one only if chosen.
S_A8_REOPEN_OMITS_DEFAULT_STAGE = True
# S-A9: GET /2025-09/staff?page&limit -> {"staff": [{id, name, email, ...}], "meta"}.
S_A9_STAFF_PATH = "/2025-09/staff"
S_A9_STAFF_KEY = "staff"
S_A9_FALLBACK_EXPAND = "assignee"  # list rows then carry their assignee's name (S-A3)
S_A9 = Assumption(
    "S-A9",
    "staff endpoint",
    "assignee names come from expand=assignee, and the Assignee field cannot be changed in "
    "DealDesk (the detail page says why)",
)
# S-A13: create needs ``name`` and ``contact {id}``; ``stage`` defaults to the first stage by
# position and ``line_items`` are optional (§16). The form asks for a stage anyway (the first
# preselected), so a deal lands where the user saw it would.
S_A13_CREATE_REQUIRED = ("name", "contact")
# S-A14 (ours, not yet in §13): a deal's Backoffice page is the ``bo`` curie (meta.curies, §8)
# with rel ``/deals/{id}``. Fallback: no link when the curie is missing or not https.
S_A14_BACKOFFICE_CURIE = "bo"
S_A14_BACKOFFICE_DEAL_REL = "/deals/{id}"
# S-A15 (ours): the token may read GET /2025-09/unit_types and /protection_levels (§17; their
# scopes are not among §1's). Fallback: line items show their ids and cannot be edited.
S_A15_CATALOGUE = {"unit_type": "/2025-09/unit_types", "protection": "/2025-09/protection_levels"}
S_A15 = Assumption(
    "S-A15",
    "unit types and protection levels",
    "line items show Stora's ids instead of names and cannot be changed in DealDesk",
)
ASSUMPTIONS = (S_A1, S_A2, S_A3, S_A9, S_A15)
# S-A11: a webhook whose signature timestamp is more than 5 minutes old is refused (§15).
S_A11_WEBHOOK_TOLERANCE_SECONDS = 5 * 60
# S-A12: any ``deal.*`` event carries the (expanded) deal to apply; polling catches the rest.
S_A12_DEAL_EVENT_PREFIX = "deal."


# S-A10: rate limits are counted per token, so the client budget is scoped to the API key.
def s_a10_budget_scope(connection: ConnectionInfo) -> str:
    return "stora:" + key_fingerprint(connection.api_key)


# --- Plain vendor facts ----------------------------------------------------------------------

PROVIDER = "stora"
PIPELINE_ID = "stora"
RATE_LIMITS = [(10, 1), (60, 60)]  # 10/s and 60/min (§9, CONFIRMED)
# Deal ids are prefixed "deal_" (§1, CONFIRMED); the characters after it are ours to bound, so a
# crafted id never reaches a URL path.
DEAL_ID_PATTERN = re.compile(r"deal_[A-Za-z0-9_-]{1,64}")
MAX_PAGE_LIMIT = 100
MAX_REFERENCE_PAGES = 20
UNTITLED = "(untitled)"
API_CREATOR = "API"
DELETED_STAGE = "Deleted stage"
UNKNOWN_STATUS = "unknown"
WEBHOOK_SIGNATURE_HEADER = "X-Stora-Signature"  # t={unix},v1={hex HMAC-SHA256} (§15)
WEBHOOK_EVENT_TYPES = ["deal.updated", "deal.lost"]  # the documented types (§15)
URL_PARAM_ERROR = "invalid_url_param"  # a 422 about a query parameter (§10)
# A Stora JSON pointer's first segment -> our field name (§10); anything else is "__all__".
POINTER_FIELDS = {
    **{stora: ours for ours, stora in S_A4_PATCH_FIELDS.items()},
    "lost_reason": "lost_reason",
    S_A5_STAGE_PATCH_FIELD: "stage",
    "contact": "contact",
    "line_items": "line_items",  # create_deal/update_deal say which item it was
}
CATALOGUE_KEYS = {"unit_type": "unit_types", "protection": "protection_levels"}
LINE_ITEM_LABELS = {"unit_type": "Unit type", "protection": "Protection"}


# --- Errors ----------------------------------------------------------------------------------


def map_stora_error(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    request_id: str,
    *,
    label: str = "Stora",
) -> ProviderError:
    """Branch on HTTP status and ``error.code`` (§10); ``message``/``details`` are display text."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error["code"] if isinstance(error.get("code"), str) else ""
    message = error["message"] if isinstance(error.get("message"), str) else ""
    common: dict[str, Any] = {
        "connection_label": label,
        "status": status,
        "code": code,
        "request_id": request_id,
    }
    if status == 401:
        return AuthenticationFailed(
            f"{label} rejected the API key. An admin must update it.", **common
        )
    if status == 403:
        return Forbidden(
            f"The {label} API key lacks a permission DealDesk needs. An admin must update it.",
            **common,
        )
    if status == 404:
        if code == "invalid_endpoint":
            return NotFound(f"{label} has no such endpoint: check the API address.", **common)
        return NotFound(f"Not found in {label}.", **common)
    if status == 409:
        return Conflict(f"The deal changed in {label} since you loaded it.", **common)
    if status == 422 or (status == 400 and code in ("invalid_request", "invalid_content")):
        return ValidationFailed(
            f"{label} refused the change: {message}" if message else None,
            field_errors=_field_errors(
                error.get("details"), message, url_params=code == URL_PARAM_ERROR
            ),
            **common,
        )
    if status == 429:
        retry_after = _seconds_until(headers.get("RateLimit-Reset"))
        wait = f" Try again in {max(1, math.ceil(retry_after))} s." if retry_after else ""
        return RateLimited(
            f"{label} is rate limiting DealDesk.{wait}", retry_after=retry_after, **common
        )
    return Unavailable(f"{label} is unavailable right now.", **common)


def _field_errors(details: Any, message: str, *, url_params: bool = False) -> dict[str, list[str]]:
    """Errors by our field name; for a refused query parameter, by the parameter's name."""
    field_errors: dict[str, list[str]] = {}
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        pointer = detail["pointer"] if isinstance(detail.get("pointer"), str) else ""
        first_segment = pointer.lstrip("/").split("/")[0]
        if url_params:
            ours = first_segment or "__all__"
        else:
            ours = POINTER_FIELDS.get(first_segment, "__all__")
        field_errors.setdefault(ours, []).append(_detail_text(detail.get("message"), pointer))
    if not field_errors:
        field_errors["__all__"] = [message or "The change was refused."]
    return field_errors


def _detail_text(message: Any, pointer: str) -> str:
    """``value at `/name` must not be empty`` -> ``Must not be empty.`` (shown by the field)."""
    if not isinstance(message, str) or not message.strip():
        return "Invalid value."
    text = message.strip()
    prefix = f"value at `{pointer}` "
    if pointer and text.startswith(prefix):
        text = text[len(prefix) :]
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _seconds_until(reset: Any) -> float | None:
    """``RateLimit-Reset`` is a UTC epoch (§9); None when absent or nonsense."""
    try:
        seconds = float(reset) - time.time()
    except (TypeError, ValueError):
        return None
    if math.isnan(seconds) or seconds > 86400:
        return None
    return max(0.0, seconds)


# --- Parsing helpers (never crash on odd types) ----------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _relation_id(value: Any) -> str | None:
    return _text(value.get("id")) if isinstance(value, dict) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _address(value: Any) -> str:
    """A site's ``address {line_1, line_2, city, postal_code}`` on one line (§6)."""
    address = _dict(value)
    town = " ".join(p for p in (_text(address.get("city")), _text(address.get("postal_code"))) if p)
    parts = (_text(address.get("line_1")), _text(address.get("line_2")), town)
    return ", ".join(part.strip() for part in parts if part)


def _date_time_value(value: Any, keep_time_of: dt.datetime | None = None) -> str | None:
    """A move-in date (date, datetime or ``YYYY-MM-DD``) as Stora's date-time, or None. A plain
    date keeps the time of day of ``keep_time_of`` (the stored move-in), else midnight UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ValidationFailed(
                "Enter a valid date.", field_errors={"starts_at": ["Enter a valid date."]}
            ) from None
    time_of_day = keep_time_of.astimezone(dt.UTC).time() if keep_time_of else dt.time()
    return dt.datetime.combine(day, time_of_day).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Adapter ---------------------------------------------------------------------------------


class StoraAdapter:
    """One Stora account. Every method may raise a ``ProviderError``."""

    def __init__(self, connection: ConnectionInfo) -> None:
        self.connection = connection
        self.transport = ApiTransport(
            connection,
            error_mapper=functools.partial(map_stora_error, label=connection.label),
            budget=RateBudget(scope=s_a10_budget_scope(connection), limits=list(RATE_LIMITS)),
        )
        self.assumptions = AssumptionLog(connection, ASSUMPTIONS)
        # S-A1 fallback: the deals read and sorted here, per query, for this adapter's life (a
        # name-sorted list pages through them with one adapter: they are read once).
        self._sorted_here: dict[str, list[Deal]] = {}
        self._curies: dict[str, str] = {}  # meta.curies as last seen: name -> href template

    def assumption_report(self) -> list[AssumptionStatus]:
        return self.assumptions.report()

    @staticmethod
    def is_deal_id(deal_id: str) -> bool:
        """Could this be a Stora deal id? Anything else is never sent upstream."""
        return DEAL_ID_PATTERN.fullmatch(str(deal_id)) is not None

    @property
    def budget(self) -> RateBudget:
        return self.transport.budget

    @property
    def last_request_id(self) -> str:
        return self.transport.last_request_id

    def lost_choices(self, pipeline: Pipeline, *, ref: ReferenceData) -> tuple[Choice, ...]:
        """Stora loses a deal with a ``lost_reason`` (S-A7), whatever its pipeline."""
        return tuple(Choice(r, humanise(r)) for r in S_A7_LOST_REASONS)

    # --- webhooks (§15) ----------------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, secret: str, *, now: float | None = None
    ) -> None:
        """``X-Stora-Signature: t=…,v1=…`` must be HMAC-SHA256(secret, "{t}.{body}") in hex,
        and ``t`` at most S-A11 old; raises ``WebhookRefused`` otherwise."""
        header = headers.get(WEBHOOK_SIGNATURE_HEADER) or ""
        parts: dict[str, list[str]] = {}
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            parts.setdefault(key, []).append(value)
        timestamps, signatures = parts.get("t", []), parts.get("v1", [])
        if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
            raise WebhookRefused("missing or malformed signature", status=401)
        timestamp = int(timestamps[0])
        now = time.time() if now is None else now
        if abs(now - timestamp) > S_A11_WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRefused("stale signature timestamp", status=401)
        signed = f"{timestamp}.".encode() + body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, given) for given in signatures):
            raise WebhookRefused("bad signature", status=401)

    def parse_webhook_event(self, body: bytes, *, ref: ReferenceData) -> DealEvent:
        """``{"event": {"id", "type", "data": {"deal": {…expanded…}}}}`` of a verified body."""
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise WebhookRefused("body is not JSON") from None
        event = _dict(document.get("event")) if isinstance(document, dict) else {}
        event_id, event_type = _text(event.get("id")), _text(event.get("type"))
        if not event_id or not event_type:
            raise WebhookRefused("not a Stora event")
        if not event_type.startswith(S_A12_DEAL_EVENT_PREFIX):
            return DealEvent(id=event_id, type=event_type, deal=None)
        raw = _dict(_dict(event.get("data")).get("deal"))
        if not self.is_deal_id(_text(raw.get("id")) or ""):
            raise WebhookRefused("the event carries no deal")
        return DealEvent(id=event_id, type=event_type, deal=self.parse_deal(raw, ref=ref))

    def register_webhook(self, url: str) -> WebhookEndpoint:
        body = {
            "name": "DealDesk",
            "api_version": "2025-09",
            "url": url,
            "event_types": WEBHOOK_EVENT_TYPES,
            "description": "Keeps DealDesk's synced deals fresh",
        }
        response = self.transport.request("POST", "/2025-09/webhook_endpoints", json=body)
        return self._endpoint_from(response)

    def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", endpoint_id):
            raise NotFound(f"Not found in {self.connection.label}.", code="invalid_id")
        return self._endpoint_from(self._get(f"/2025-09/webhook_endpoints/{endpoint_id}"))

    def _endpoint_from(self, response: ApiResponse) -> WebhookEndpoint:
        endpoint = (
            _dict(response.body.get("webhook_endpoint")) if isinstance(response.body, dict) else {}
        )
        if not _text(endpoint.get("id")):
            raise self._unreadable(response)
        return WebhookEndpoint(
            id=_text(endpoint.get("id")) or "",
            url=_text(endpoint.get("url")) or "",
            state=_text(endpoint.get("status")) or "unknown",
            secret=_text(endpoint.get("secret")) or "",
        )

    # --- reads --------------------------------------------------------------------------------

    def ping(self) -> None:
        self._get("/2025-09/deals/stages", {"limit": 1})

    def daily_quota(self) -> DailyQuota | None:
        return None  # §9: a per-second and a per-minute limit, no daily quota

    def reference_data(self) -> ReferenceData:
        stage_rows = self._get_all(
            "/2025-09/deals/stages", "stages", {"sort_by": "position", "sort_direction": "ASC"}
        )
        stages = []
        for row in stage_rows:
            stage_id = _text(row.get("id"))
            if stage_id:
                name = _text(row.get("name")) or stage_id
                stages.append(Stage(stage_id, name, _int(row.get("position")), OPEN, PIPELINE_ID))
        pipeline = Pipeline(PIPELINE_ID, self.connection.label, tuple(stages))
        names: dict[str, str] = {}
        staff = []
        for row in self._staff_rows():
            staff_id = _text(row.get("id"))
            if staff_id:
                names[staff_id] = _text(row.get("name")) or _text(row.get("email")) or staff_id
                staff.append(Choice(staff_id, names[staff_id]))
        contacts = []
        for row in self._get_all("/2025-09/contacts", "contacts"):
            contact_id = _text(row.get("id"))
            if contact_id:
                full_name = _text(row.get("full_name")) or _text(row.get("email"))
                names[contact_id] = full_name or contact_id
                contacts.append(
                    ContactInfo(
                        contact_id,
                        names[contact_id],
                        email=_text(row.get("email")) or "",
                        phone=_text(row.get("phone_number")) or "",
                    )
                )
        places = []
        for row in self._get_all("/2025-09/sites", "sites"):
            site_id = _text(row.get("id"))
            if site_id:
                names[site_id] = _text(row.get("name")) or site_id
                places.append(
                    PlaceInfo(site_id, names[site_id], "site", address=_address(row.get("address")))
                )
        staff.sort(key=lambda choice: choice.label.casefold())
        return ReferenceData(
            pipelines=(pipeline,),
            staff=tuple(staff),
            names=names,
            contacts=tuple(contacts),
            places=tuple(places),
            catalogue=tuple(self._catalogue()),
            link_templates=dict(self._curies),
        )

    def _catalogue(self) -> list[CatalogueItem]:
        """S-A15, or its fallback: no catalogue (line items show their ids)."""
        if self.assumptions.fell_back(S_A15):
            return []
        items = []
        try:
            for row in self._get_all(S_A15_CATALOGUE["unit_type"], CATALOGUE_KEYS["unit_type"]):
                item_id = _text(row.get("id"))
                if item_id:
                    name = _text(row.get("name")) or item_id
                    size = _text(row.get("size_description")) or ""
                    items.append(CatalogueItem(item_id, "unit_type", name, size))
            protection_key = CATALOGUE_KEYS["protection"]
            for row in self._get_all(S_A15_CATALOGUE["protection"], protection_key):
                item_id = _text(row.get("id"))
                if item_id:  # §17: no name, known by its cover level
                    cover = _text(_dict(row.get("cover_level")).get("formatted"))
                    items.append(
                        CatalogueItem(item_id, "protection", f"Cover {cover}" if cover else item_id)
                    )
        except (NotFound, Forbidden) as error:
            self.assumptions.fall_back(S_A15, str(error.status or error.code))
            return []
        self.assumptions.held(S_A15)
        return items

    def _staff_rows(self) -> list[dict[str, Any]]:
        """S-A9, or its fallback: no staff list (names then come from expand)."""
        if self.assumptions.fell_back(S_A9):
            return []
        try:
            rows = list(self._get_all(S_A9_STAFF_PATH, S_A9_STAFF_KEY))
        except NotFound as error:
            self.assumptions.fall_back(S_A9, str(error.status or 404))
            return []
        self.assumptions.held(S_A9)
        return rows

    def list_deals(
        self, query: DealQuery, *, ref: ReferenceData, cursor: str | None, limit: int
    ) -> DealPage:
        """One upstream call. The cursor is the row offset to continue from; the page may be
        shorter than ``limit`` when the window cannot be served by one Stora page."""
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        return self._list_window(query, ref=ref, offset=offset, limit=limit, max_calls=1)

    def list_deals_at(
        self, query: DealQuery, *, ref: ReferenceData, offset: int, limit: int
    ) -> DealPage:
        """Rows ``[offset, offset + limit)``: one upstream call when a page size fits the window,
        else as few as needed. ``next_cursor`` is the offset after the rows consumed."""
        return self._list_window(query, ref=ref, offset=offset, limit=limit, max_calls=None)

    def get_deal(self, deal_id: str, *, ref: ReferenceData) -> Deal:
        path = self._deal_path(deal_id)
        if not self.assumptions.fell_back(S_A3):
            try:
                response = self._get(path, {"expand": S_A3_EXPAND})
            except ValidationFailed as error:
                if "expand" not in _refused_params(error, {"expand"}):
                    raise
                self.assumptions.fall_back(S_A3, f"{error.status or 422} on expand")
            else:
                self.assumptions.held(S_A3)
                return self._deal_from(response, ref=ref, deal_id=deal_id)
        return self._deal_from(self._get(path), ref=ref, deal_id=deal_id)

    # --- what the UI may offer ----------------------------------------------------------------

    def editable_fields(self, deal: Deal, *, ref: ReferenceData) -> list[EditableField]:
        owner_id = deal.owner.id if deal.owner and deal.owner.id else ""
        choices = [Choice("", "Unassigned"), *ref.staff]
        if owner_id and all(choice.value != owner_id for choice in ref.staff):
            choices.append(Choice(owner_id, deal.owner.name if deal.owner else owner_id))
        raw_name = deal.raw.get("name")
        assignee = EditableField("assignee", "Assignee", "select", owner_id, choices=tuple(choices))
        fields = [
            EditableField(
                "name", "Name", "text", raw_name if isinstance(raw_name, str) else "", required=True
            ),
            EditableField("note", "Note", "textarea", deal.note or ""),
            EditableField(
                "starts_at",
                "Move-in date",
                "date",
                deal.starts_at.astimezone(dt.UTC).date() if deal.starts_at else None,
            ),
        ]
        if not self.assumptions.fell_back(S_A9):  # no staff list: nobody to choose from
            fields.append(assignee)
        fields.extend(self._line_item_fields(deal, ref))
        return fields

    def _line_item_fields(self, deal: Deal, ref: ReferenceData) -> list[EditableField]:
        """One select per line item type (§3.3: at most one item of each), to replace it.
        Without the catalogue (S-A15 fallback) there is nothing to choose from."""
        fields = []
        for line_type in LINE_ITEM_TYPES:
            catalogue = ref.catalogue_of(line_type)
            if not catalogue:
                continue
            current = next((i.item_id for i in deal.line_items if i.type == line_type), "")
            choices = [Choice(item.id, item.label) for item in catalogue]
            if current and all(choice.value != current for choice in choices):
                choices.append(Choice(current, current))
            fields.append(
                EditableField(
                    line_type, LINE_ITEM_LABELS[line_type], "select", current, tuple(choices)
                )
            )
        return fields

    def _notes(self) -> tuple[str, ...]:
        if self.assumptions.fell_back(S_A9):
            return (
                f"Assignee cannot be changed in DealDesk: {self.connection.label} offers no "
                "staff list to choose from. Change it in Stora.",
            )
        return ()

    def actions(self, deal: Deal, *, ref: ReferenceData) -> DealActions:
        stages = self._stages(ref)
        if deal.status == OPEN:
            return DealActions(
                stage_choices=stages,
                can_change_stage=bool(stages),
                can_win=True,
                can_lose=True,
                lost_reasons=tuple(Choice(r, humanise(r)) for r in S_A7_LOST_REASONS),
                notes=self._notes(),
            )
        if deal.status in (WON, LOST):
            return DealActions(
                can_reopen=True,
                reopen_stages=stages,
                reopen_assignees=ref.staff,
                notes=self._notes(),
            )
        return DealActions(notes=self._notes())

    # --- writes -------------------------------------------------------------------------------

    def update_deal(
        self,
        deal_id: str,
        changes: dict[str, Any],
        *,
        ref: ReferenceData,
        idempotency_key: str,
        current: Deal | None = None,
    ) -> Deal:
        """PATCH only the given fields. Stora documents no idempotency for PATCH (§9): no key.
        ``current`` is the deal as just read: a new move-in date keeps its time of day."""
        body: dict[str, Any] = {}
        line_changes = {f: v for f, v in changes.items() if f in LINE_ITEM_TYPES}
        if line_changes:
            if current is None:
                current = self.get_deal(deal_id, ref=ref)
            body["line_items"] = _line_items_body(current.line_items, line_changes)
        for field, value in changes.items():
            if field in LINE_ITEM_TYPES:
                continue
            stora_field = S_A4_PATCH_FIELDS.get(field)
            if field == "assignee" and self.assumptions.fell_back(S_A9):
                stora_field = None
            if stora_field is None:
                raise ValidationFailed(
                    f"{field} cannot be changed in {self.connection.label}.",
                    field_errors={"__all__": [f"{field} cannot be changed here."]},
                    connection_label=self.connection.label,
                )
            if field == "name":
                body[stora_field] = str(value).strip()
            elif field == "note":
                body[stora_field] = str(value) if value not in (None, "") else None
            elif field == "starts_at":
                body[stora_field] = _date_time_value(value, current.starts_at if current else None)
            else:
                body[stora_field] = {"id": str(value)} if value not in (None, "") else None
        if not body:
            return self.get_deal(deal_id, ref=ref)
        try:
            return self._write("PATCH", deal_id, "", body, ref=ref, previous=current)
        except ValidationFailed as error:
            _blame_line_items(error, line_changes)
            raise

    # --- create (§16) -------------------------------------------------------------------------

    def create_fields(self, *, ref: ReferenceData) -> list[EditableField]:
        stages = self._stages(ref)
        fields = [
            EditableField("name", "Name", "text", "", required="name" in S_A13_CREATE_REQUIRED),
            EditableField(
                "contact",
                "Contact",
                "text",
                "",
                required="contact" in S_A13_CREATE_REQUIRED,
                lookup="contact",
                help_text="Type part of a name or email, then pick the contact.",
            ),
            EditableField(
                "stage",
                "Stage",
                "select",
                stages[0].id if stages else "",
                tuple(Choice(s.id or "", s.name) for s in stages),
                required=bool(stages),
            ),
        ]
        for line_type in LINE_ITEM_TYPES:
            catalogue = ref.catalogue_of(line_type)
            if catalogue:
                choices = tuple(Choice(item.id, item.label) for item in catalogue)
                fields.append(
                    EditableField(line_type, LINE_ITEM_LABELS[line_type], "select", "", choices)
                )
        return fields

    def create_deal(
        self, values: dict[str, Any], *, ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        """``POST /2025-09/deals`` with the Idempotency-Key of the rendered form (§9, §16)."""
        body: dict[str, Any] = {"name": str(values.get("name") or "").strip()}
        if values.get("contact"):
            body["contact"] = {"id": str(values["contact"])}
        if values.get("stage"):
            body["stage"] = {"id": str(values["stage"])}
        line_changes = {t: values[t] for t in LINE_ITEM_TYPES if values.get(t)}
        if line_changes:
            body["line_items"] = _line_items_body((), line_changes)
        try:
            response = self.transport.request(
                "POST", "/2025-09/deals", json=body, idempotency_key=idempotency_key
            )
        except ValidationFailed as error:
            _blame_line_items(error, line_changes)
            raise
        if not isinstance(response.body, dict):
            raise self._unreadable(response)
        self._learn_curies(response.body)
        return self._deal_from(response, ref=ref, deal_id="")

    def deal_links(self, deal: Deal, *, ref: ReferenceData) -> tuple[DealLink, ...]:
        """S-A14: the deal's Backoffice page from the ``bo`` curie; none if it is not https."""
        template = ref.link_templates.get(S_A14_BACKOFFICE_CURIE, "")
        if not self.is_deal_id(deal.id) or not template:
            return ()
        rel = S_A14_BACKOFFICE_DEAL_REL.format(id=quote(deal.id, safe=""))
        url = link_from_template(template, rel)
        return (DealLink("Open in Stora Backoffice", url),) if url else ()

    def change_stage(
        self, deal: Deal, stage_id: str, *, ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        if deal.status == OPEN:
            body = {S_A5_STAGE_PATCH_FIELD: {"id": stage_id}}
            return self._write("PATCH", deal.id, "", body, ref=ref, previous=deal)
        if deal.status in (WON, LOST):  # S-A5: only a reopen moves a closed deal, on purpose
            raise Conflict(
                f"This deal is {deal.status}: its stage changes only when it is reopened. "
                "Use Reopen and choose the stage.",
                current=deal,
                code="closed_deal",
                connection_label=self.connection.label,
            )
        raise Conflict(
            f"A deal that is {humanise(deal.status).lower()} cannot change stage.",
            current=deal,
            connection_label=self.connection.label,
        )

    def mark_won(self, deal: Deal, *, ref: ReferenceData, idempotency_key: str) -> Deal:
        return self._write(
            "POST", deal.id, "/win", None, ref=ref, key=idempotency_key, previous=deal
        )

    def mark_lost(
        self, deal: Deal, reason: str, *, ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        body = {"lost_reason": reason}
        return self._write(
            "POST", deal.id, "/lose", body, ref=ref, key=idempotency_key, previous=deal
        )

    def reopen(
        self,
        deal: Deal,
        *,
        stage_id: str | None,
        assignee_id: str | None,
        ref: ReferenceData,
        idempotency_key: str,
    ) -> Deal:
        body: dict[str, Any] = {}
        if not stage_id and not S_A8_REOPEN_OMITS_DEFAULT_STAGE:
            first = next(iter(self._stages(ref)), None)
            stage_id = first.id if first else None
        if stage_id:
            body["stage"] = {"id": stage_id}
        if assignee_id:
            body["assignee"] = {"id": assignee_id}
        return self._write(
            "POST", deal.id, "/reopen", body, ref=ref, key=idempotency_key, previous=deal
        )

    # --- HTTP ---------------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> ApiResponse:
        response = self.transport.request("GET", path, params=params)
        if not isinstance(response.body, dict):
            raise self._unreadable(response)
        self._learn_curies(response.body)
        return response

    def _learn_curies(self, body: dict[str, Any]) -> None:
        """Every ``meta`` carries ``curies``, Stora's link templates by name (§8)."""
        for curie in _list(_dict(body.get("meta")).get("curies")):
            name, href = _text(_dict(curie).get("name")), _text(_dict(curie).get("href"))
            if name and href:
                self._curies[name] = href

    def _get_all(
        self,
        path: str,
        key: str,
        params: Mapping[str, Any] | None = None,
        max_pages: int = MAX_REFERENCE_PAGES,
    ) -> Iterator[dict[str, Any]]:
        """Every row of a lookup list: ``limit=100`` while ``next`` is not null (§8), capped."""
        page = 1
        for _ in range(max_pages):
            body = self._get(path, {**(params or {}), "page": page, "limit": MAX_PAGE_LIMIT}).body
            yield from (row for row in _list(body.get(key)) if isinstance(row, dict))
            next_page = _int(_dict(_dict(body.get("meta")).get("pagination")).get("next"))
            if next_page is None or next_page <= page:
                return
            page = next_page

    def _write(
        self,
        method: str,
        deal_id: str,
        action: str,
        body: dict[str, Any] | None,
        *,
        ref: ReferenceData,
        key: str | None = None,
        previous: Deal | None = None,
    ) -> Deal:
        response = self.transport.request(
            method, self._deal_path(deal_id) + action, json=body, idempotency_key=key
        )
        if not isinstance(response.body, dict):
            raise self._unreadable(response)
        return self._deal_from(response, ref=ref, deal_id=deal_id, previous=previous)

    def _deal_from(
        self,
        response: ApiResponse,
        *,
        ref: ReferenceData,
        deal_id: str,
        previous: Deal | None = None,
    ) -> Deal:
        raw = response.body.get("deal")
        if not isinstance(raw, dict):
            raise self._unreadable(response)
        return self.parse_deal(raw, ref=ref, fallback_id=deal_id, previous=previous)

    def _unreadable(self, response: ApiResponse) -> Unavailable:
        label = self.connection.label
        return Unavailable(
            f"{label} sent a response DealDesk could not read.",
            connection_label=label,
            status=response.status,
            code="malformed_response",
            request_id=response.request_id,
        )

    def _deal_path(self, deal_id: str) -> str:
        if not self.is_deal_id(deal_id):
            raise NotFound(
                f"Not found in {self.connection.label}.",
                connection_label=self.connection.label,
                code="invalid_deal_id",
            )
        return "/2025-09/deals/" + quote(str(deal_id), safe="")

    @staticmethod
    def _stages(ref: ReferenceData) -> tuple[Stage, ...]:
        pipeline = ref.pipeline(PIPELINE_ID)
        return tuple(s for s in pipeline.ordered_stages() if s.id) if pipeline else ()

    # --- listing ------------------------------------------------------------------------------

    def _list_params(self, query: DealQuery) -> dict[str, Any]:
        """The deals list's query, without what this connection's Stora refused (S-A1..3)."""
        params: dict[str, Any] = {}
        if not self.assumptions.fell_back(S_A1):
            params["sort_by"], params["sort_direction"] = S_A1_SORT_FIELDS.get(
                query.sort, S_A1_DEFAULT_SORT
            )
        refused = self.assumptions.refused(S_A2)
        for field, param in S_A2_FILTER_PARAMS.items():
            value = getattr(query, field)
            if value and param not in refused:
                params[param] = value
        if self.assumptions.fell_back(S_A9) and not self.assumptions.fell_back(S_A3):
            params["expand"] = S_A9_FALLBACK_EXPAND
        return params

    def _learn_refused(self, error: ValidationFailed, params: Mapping[str, Any]) -> bool:
        """Record which assumed list parameters a 422 refused; False when it was none of them
        (then the error is real and goes to the caller)."""
        refused = _refused_params(error, set(params) - {"page", "limit"})
        detail = f"{error.status or 422} on " + ", ".join(sorted(refused))
        if refused & set(S_A1_SORT_PARAMS):
            self.assumptions.fall_back(S_A1, detail, refused=refused & set(S_A1_SORT_PARAMS))
        filters = refused & set(S_A2_FILTER_PARAMS.values())
        if filters:
            self.assumptions.fall_back(S_A2, detail, refused=filters)
        if "expand" in refused:
            self.assumptions.fall_back(S_A3, detail)
        return bool(refused)

    def _list_window(
        self,
        query: DealQuery,
        *,
        ref: ReferenceData,
        offset: int,
        limit: int,
        max_calls: int | None,
    ) -> DealPage:
        if query.pipeline_id and query.pipeline_id != PIPELINE_ID:
            return DealPage(deals=(), next_cursor=None, total=0)
        offset, limit = max(0, int(offset)), max(1, int(limit))
        for _attempt in range(len(ASSUMPTIONS)):  # each refusal is learned, then retried
            params = self._list_params(query)
            try:
                if self.assumptions.fell_back(S_A1):
                    page = self._locally_sorted_window(query, params, ref, offset, limit)
                else:
                    page = self._upstream_window(params, ref, offset, limit, max_calls)
            except ValidationFailed as error:
                if not self._learn_refused(error, params):
                    raise
                continue
            self._list_params_held(params)
            return page
        raise Unavailable(
            f"{self.connection.label} refused every way DealDesk lists deals.",
            connection_label=self.connection.label,
        )

    def _list_params_held(self, params: Mapping[str, Any]) -> None:
        if "sort_by" in params:
            self.assumptions.held(S_A1)
        if set(params) & set(S_A2_FILTER_PARAMS.values()):
            self.assumptions.held(S_A2)
        if "expand" in params:
            self.assumptions.held(S_A3)

    def _upstream_window(
        self,
        params: dict[str, Any],
        ref: ReferenceData,
        offset: int,
        limit: int,
        max_calls: int | None,
    ) -> DealPage:
        deals: list[Deal] = []
        position, end, total, calls = offset, offset + limit, None, 0
        while position < end and (max_calls is None or calls < max_calls):
            page_size, page = page_for_window(position, end - position)
            body = self._get("/2025-09/deals", {**params, "page": page, "limit": page_size}).body
            calls += 1
            pagination = _dict(_dict(body.get("meta")).get("pagination"))
            total = _int(pagination.get("count"))
            rows = _list(body.get("deals"))
            start = position - (page - 1) * page_size
            window = rows[start : start + end - position]
            for row in window:  # a row without an id cannot be linked to: skipped, still counted
                if isinstance(row, dict) and _text(row.get("id")):
                    deals.append(self.parse_deal(row, ref=ref))
            position += len(window)
            if not window or len(rows) < page_size:
                break  # the list ends here
        more = position < total if total is not None else position == end
        return DealPage(
            deals=tuple(deals), next_cursor=str(position) if more else None, total=total
        )

    def _locally_sorted_window(
        self,
        query: DealQuery,
        params: dict[str, Any],
        ref: ReferenceData,
        offset: int,
        limit: int,
    ) -> DealPage:
        """S-A1 fallback: every matching deal (capped) in Stora's order, sorted here."""
        descending = S_A1_SORT_FIELDS.get(query.sort, S_A1_DEFAULT_SORT)[1] == "DESC"
        memo = repr((sorted(params.items()), descending))
        deals = self._sorted_here.get(memo)
        if deals is None:
            rows = self._get_all("/2025-09/deals", "deals", params, S_A1_LOCAL_SORT_MAX_PAGES)
            deals = [self.parse_deal(row, ref=ref) for row in rows if _text(row.get("id"))]
            deals.sort(
                key=lambda d: (d.updated_at is None, d.updated_at or dt.datetime.min, d.id),
                reverse=descending,
            )
            if descending:  # deals without updated_at stay last either way
                deals.sort(key=lambda d: d.updated_at is None)
            self._sorted_here[memo] = deals
        window = deals[offset : offset + limit]
        after = offset + len(window)
        return DealPage(
            deals=tuple(window),
            next_cursor=str(after) if after < len(deals) else None,
            total=len(deals),
        )

    # --- parsing ------------------------------------------------------------------------------

    def parse_deal(
        self,
        raw: dict[str, Any],
        *,
        ref: ReferenceData,
        fallback_id: str = "",
        previous: Deal | None = None,
    ) -> Deal:
        """A Stora deal (relations as ``{id}`` or expanded) as a ``Deal``; every field optional.

        List, win, lose and reopen bodies leave out ``note`` and ``metadata`` (§11.5): after a
        write they are kept from ``previous``, the deal as it was loaded.
        """
        note = raw.get("note") if "note" in raw or previous is None else previous.note
        metadata = raw.get("metadata")
        if "metadata" not in raw and previous is not None:
            metadata = previous.metadata
        return Deal(
            connection_slug=self.connection.slug,
            source_label=self.connection.label,
            provider=PROVIDER,
            id=_text(raw.get("id")) or fallback_id,
            name=_text(raw.get("name")) or UNTITLED,
            status=_text(raw.get("status")) or UNKNOWN_STATUS,
            stage=self._stage(raw.get("stage"), ref),
            pipeline=ref.pipeline(PIPELINE_ID),
            value=None,
            value_text=_text(raw.get("value_estimate")),
            owner=self._person(raw.get("assignee"), ref),
            creator=self._person(raw.get("creator"), ref),
            contact=self._ref(raw.get("contact"), ref, "full_name", "email"),
            site=self._ref(raw.get("site"), ref, "name"),
            starts_at=parse_timestamp(raw.get("starts_at")),
            note=note if isinstance(note, str) else None,
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            line_items=tuple(self._line_items(raw.get("line_items"))),
            lost_reason=_text(raw.get("lost_reason")),
            created_at=parse_timestamp(raw.get("created_at")),
            updated_at=parse_timestamp(raw.get("updated_at")),
            raw=raw,
            absent=frozenset(f for f in ("note", "metadata") if f not in raw and previous is None),
        )

    @staticmethod
    def _stage(value: Any, ref: ReferenceData) -> Stage | None:
        if not isinstance(value, dict):
            return None
        stage_id = _text(value.get("id"))
        known = ref.stage(stage_id) if stage_id else None
        name = _text(value.get("name")) or (known.name if known else None)
        position = _int(value.get("position"))
        if position is None and known:
            position = known.position
        if stage_id is None:  # deleted in Stora (§11.1): show its name, never send it back
            return Stage(None, name or DELETED_STAGE, position, OPEN, PIPELINE_ID)
        return Stage(stage_id, name or stage_id, position, OPEN, PIPELINE_ID)

    @staticmethod
    def _ref(value: Any, ref: ReferenceData, *name_keys: str) -> Ref | None:
        related_id = _relation_id(value)
        if related_id is None:
            return None
        for key in name_keys:  # an expanded object carries its own name
            name = _text(value.get(key))
            if name:
                return Ref(related_id, name)
        if related_id in ref.names:
            return Ref(related_id, ref.names[related_id])
        return Ref(related_id, related_id, missing=True)

    def _person(self, value: Any, ref: ReferenceData) -> Ref | None:
        related_id = _relation_id(value)
        if related_id and related_id.startswith("app_"):  # an API application (§11.4)
            return Ref(None, API_CREATOR)
        return self._ref(value, ref, "name", "email")

    @staticmethod
    def _line_items(value: Any) -> Iterator[LineItem]:
        for row in _list(value):
            if not isinstance(row, dict):
                continue
            item_id = _relation_id(row.get("item"))
            line_type = _text(row.get("type"))
            if item_id and line_type:
                yield LineItem(line_type, item_id, _int(row.get("quantity")))


def _line_items_body(
    items: tuple[LineItem, ...] | list[LineItem], changes: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The whole ``line_items`` list a PATCH or create sends (§3.3: it replaces the list): the
    current items with the changed types replaced (an empty value removes that item)."""
    body = []
    for line_type in LINE_ITEM_TYPES:
        if line_type in changes:
            item_id = changes[line_type]
        else:
            item_id = next((i.item_id for i in items if i.type == line_type), None)
        if item_id:
            body.append({"type": line_type, "item": {"id": str(item_id)}})
    return body


def _blame_line_items(error: ValidationFailed, changes: Mapping[str, Any]) -> None:
    """A refused ``/line_items/…`` pointer goes to the field(s) that changed them."""
    messages = error.field_errors.pop("line_items", None)
    if not messages:
        return
    for line_type in changes or {"__all__": None}:
        error.field_errors.setdefault(line_type, []).extend(messages)


def _refused_params(error: ValidationFailed, sent: set[str]) -> set[str]:
    """The query parameters among ``sent`` a 422 ``invalid_url_param`` names; all of them when
    it names none (the request cannot succeed with any of them)."""
    if error.code != URL_PARAM_ERROR:
        return set()
    named = set(error.field_errors) & sent
    return named or (sent if "__all__" in error.field_errors or not error.field_errors else set())


def page_for_window(offset: int, limit: int) -> tuple[int, int]:
    """The Stora page size and page number that serve most of rows ``[offset, offset + limit)``.

    Prefers the smallest size ``L`` (``limit <= L <= 100``) whose page holds the whole window;
    when none does, the size whose page holds the longest start of it (the caller continues).
    """
    limit = min(limit, MAX_PAGE_LIMIT)
    page_size = max(
        range(limit, MAX_PAGE_LIMIT + 1),
        key=lambda size: (min(limit, size - offset % size), -size),
    )
    return page_size, offset // page_size + 1
