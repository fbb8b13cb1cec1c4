"""A nodestash API v1 simulator, following ../shared/api/nodestash.md (CONFIRMED and ASSUMED).

Paths arrive without the ``/nodestash`` prefix, e.g. ``/v1/deals/dl_x``. Choices the docs leave
open, fixed here so tests and the adapter agree:

- ``limit`` defaults to 20 (the API reference pages; /docs/pagination says 25), must be 1..100.
- Cursors are base64url JSON ``{"offset", "filters"}``; following one with other filters or
  another sort is a 400 on field ``cursor``.
- List sorts put null values last in both directions; ties break on id.
- PATCH ignores unknown and server-managed fields (``id``, ``pipeline_id``, ``closed_at``,
  ``owner_id``, timestamps), as a Zod-style schema strips them. Every known field sent bumps
  ``updated_at``, strictly later than before.
- ``value``: a JSON number (not a string or a bool) between 0 and 10^13, rounded half-up to 2
  places; ``tags``: at most 20 strings (the wording of nodestash's own 400 example).
- Idempotency (N-A6): the first response (below 500) to an ``Idempotency-Key`` on POST or PATCH is
  replayed for the same method, path and body; the same key with another request is a 409.
- An unsupported method on a known path is a 405 ``METHOD_NOT_ALLOWED``; an unknown path a 404.
- Plans (§11): the workspace starts on ``sandbox`` (Free's 5/s burst, 100,000 a day so demos and
  tests never spend it); ``set_plan`` switches to ``free``, ``starter``, ``pro`` or ``scale``.
- ``updated_at`` never goes backwards across the workspace: a change is stamped at least a second
  after the deal's previous stamp and never before the latest stamp given to any change, so a
  poller's high-water mark never skips a change.
- Create (§19): 201; without ``pipeline_id`` the default pipeline, without ``stage_id`` its first
  open stage; a ``stage_id`` outside that pipeline is a 400 on ``stage_id`` (as N-A4); an unknown
  ``pipeline_id``, ``contact_id`` or ``company_id`` a 422. ``DELETE /deals/{id}`` answers 204 and
  leaves the deal's activities in place (nodestash documents nothing else).
- Activities (§20): ``type`` and ``subject`` required; ``due_date`` a date ``YYYY-MM-DD`` (or a
  date-time, kept as sent in UTC); ``is_done`` sets ``completed_at``, false clears it; ``limit``
  defaults to 25; sorts ``created_at``, ``updated_at``, ``due_date`` (default ``-created_at``).
  ``PATCH /activities/{id}`` is partial (N-A9); ``DELETE`` answers 204.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from dealdesk.sandbox.core import BadJson, SandboxRequest, SandboxResponse
from dealdesk.sandbox.seed_nodestash import build_seed, format_timestamp, parse_timestamp

DEFAULT_LIMIT = 20
DEFAULT_ACTIVITY_LIMIT = 25  # nodestash.md §14 pitfall 3
MAX_LIMIT = 100
MAX_TITLE_LENGTH = 300
MAX_TAGS = 20
MAX_VALUE = Decimal("1e13")
CENTS = Decimal("0.01")

DEAL_SORTS = ("created_at", "updated_at", "value", "expected_close_date")
CONTACT_SORTS = ("created_at", "updated_at", "email", "first_name", "last_name")
COMPANY_SORTS = ("created_at", "updated_at", "name", "domain")
DEAL_INCLUDES = ("contact", "company", "pipeline", "stage")
UPGRADE_URL = "https://nodestash.io/pricing"
ACTIVITY_TYPES = ("note", "task", "email", "call", "meeting", "custom")
ACTIVITY_SORTS = ("created_at", "updated_at", "due_date")
MAX_SUBJECT_LENGTH = 500
# nodestash.md §11: plan -> (name in messages, daily quota, burst per second). ``sandbox`` is the
# default: Free's burst with a daily quota high enough that demos and tests never spend it.
PLANS = {
    "sandbox": ("Free", 100_000, 5),
    "free": ("Free", 1_000, 5),
    "starter": ("Starter", 25_000, 25),
    "pro": ("Pro", 250_000, 50),
    "scale": ("Scale", 2_000_000, 200),
}
DEFAULT_PLAN = "sandbox"

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")
_ID_RE = {
    prefix: re.compile(rf"^{prefix}[A-Za-z0-9]+$")
    for prefix in ("dl_", "pp_", "ps_", "ct_", "co_", "act_")
}
# Id-typed list filters: a value that is not such an id is a 400 VALIDATION_ERROR.
_ID_PARAMS = {"pipeline_id": "pp_", "stage_id": "ps_", "contact_id": "ct_", "company_id": "co_"}
# The other documented way each ASSUMED read could turn out (``Sandbox.set_variants``):
VARIANTS = frozenset(
    {
        "include_enveloped",  # N-A1: included objects come as {id, type, attributes}
        "cursor_bound_to_limit",  # N-A8: a cursor must be followed with the limit it came with
        "activity_patch_405",  # N-A9: activities cannot be PATCHed (405)
        "activity_sort_created_only",  # N-A10: activities sort by created_at only
    }
)
_INCLUDE_TYPES = {
    "contact": "contact",
    "company": "company",
    "pipeline": "pipeline",
    "stage": "pipeline_stage",
}
_NULLABLE_DEAL_FIELDS = ("value", "contact_id", "company_id", "expected_close_date")


class ApiError(Exception):
    """Raised inside a handler; turned into nodestash's error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after


def _validation(field: str, message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", "Request validation failed", [_detail(field, message)])


def _detail(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _resource(kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"id": attributes["id"], "type": kind, "attributes": attributes}


def _lookup(table: dict[str, dict[str, Any]], object_id: Any) -> dict[str, Any] | None:
    return table.get(object_id) if isinstance(object_id, str) else None


def _amount(deal: dict[str, Any]) -> Decimal | None:
    """A stored value as a Decimal; ``None`` when unset or not a decimal string."""
    try:
        amount = Decimal(deal.get("value"))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return amount if amount.is_finite() else None


def _tag_set(item: dict[str, Any]) -> set[str]:
    tags = item.get("tags")
    return {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()


def _next_midnight_utc(now: float) -> int:
    return (int(now) // 86400 + 1) * 86400


class NodestashSimulator:
    """One nodestash workspace behind one API key with every scope (``*``)."""

    name = "nodestash"
    VARIANTS = VARIANTS
    plan = DEFAULT_PLAN
    burst_limit = PLANS[DEFAULT_PLAN][2]  # per second, per workspace
    daily_limit = PLANS[DEFAULT_PLAN][1]

    def __init__(self, token: str) -> None:
        self.token = token
        self.rate_limiting = False
        self.variants: set[str] = set()
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.companies: dict[str, dict[str, Any]] = {}
        self.deals: dict[str, dict[str, Any]] = {}
        self.activities: dict[str, dict[str, Any]] = {}
        self._last_stamp = ""
        self.idempotent_responses: dict[str, tuple[str, SandboxResponse]] = {}
        self._burst_window = 0
        self._burst_used = 0
        self._daily_reset = 0
        self._daily_used = 0

    # --- Simulator protocol ---------------------------------------------------------------------

    def reset(self, seed: str) -> None:
        data = build_seed(seed)
        self.pipelines = data.pipelines
        self.contacts = data.contacts
        self.companies = data.companies
        self.deals = data.deals
        self.activities = data.activities
        self._last_stamp = ""
        self.idempotent_responses = {}
        self.variants = set()
        self._changed()
        self._burst_window = self._burst_used = 0
        self._daily_reset = self._daily_used = 0
        self.set_plan(DEFAULT_PLAN)

    def set_plan(self, plan: str) -> None:
        """Switch the workspace's plan (nodestash.md §11); what was spent today stays spent."""
        _, self.daily_limit, self.burst_limit = PLANS[plan]
        self.plan = plan

    def set_daily_remaining(self, remaining: int) -> None:
        """Leave exactly ``remaining`` requests of today's quota (tests of a spent quota)."""
        if not 0 <= remaining <= self.daily_limit:
            raise ValueError(f"daily_remaining must be from 0 to {self.daily_limit}")
        now = time.time()
        if now >= self._daily_reset:
            self._daily_reset = _next_midnight_utc(now)
        self._daily_used = self.daily_limit - remaining

    def quota(self) -> dict[str, Any]:
        """The plan and what is left of it, as the next response's headers would say."""
        return {
            "plan": self.plan,
            "daily_limit": self.daily_limit,
            "daily_remaining": max(0, self.daily_limit - self._daily_used)
            if time.time() < self._daily_reset
            else self.daily_limit,
            "burst_limit": self.burst_limit,
        }

    def delete_deal(self, deal_id: str) -> None:
        """Remove a deal for good, as ``DELETE /deals/{id}`` does; its activities stay."""
        del self.deals[deal_id]
        self._changed()

    def mutate_deal(self, deal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply raw attribute changes as another nodestash user would (no validation beyond
        formatting a numeric ``value``); a ``stage_id`` of another pipeline moves the deal there.
        ``updated_at`` moves forward, unless the changes set it (an older copy, for tests)."""
        deal = self.deals[deal_id]
        changes = copy.deepcopy(changes)
        raw_value = changes.get("value")
        if isinstance(raw_value, int | float) and not isinstance(raw_value, bool):
            if not math.isfinite(raw_value):
                raise ValueError("value must be a finite number")
            try:
                changes["value"] = str(Decimal(str(raw_value)).quantize(CENTS, ROUND_HALF_UP))
            except InvalidOperation:
                raise ValueError("value must be a finite number below 10^26") from None
        pipeline, stage = self._find_stage(changes.get("stage_id"))
        deal.update(changes)
        if stage is not None:
            deal["pipeline_id"] = pipeline["id"]
            self._move_to_stage(deal, stage)
        if "updated_at" in changes:
            self._changed()
        else:
            self._touch(deal)
        return copy.deepcopy(deal)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        request_id = "req_" + uuid.uuid4().hex[:20]
        try:
            self._authenticate(request)
            self._spend_rate_limit()
            response = self._idempotent(request, request_id)
        except ApiError as error:
            response = self._error_response(error, request_id)
        response.headers.update(self._rate_headers())
        response.headers["X-Request-Id"] = request_id
        return response

    # --- Auth, rate limits, idempotency ---------------------------------------------------------

    def _authenticate(self, request: SandboxRequest) -> None:
        if "authorization" not in request.headers:
            raise ApiError(401, "MISSING_AUTH", "No Authorization header provided")
        if request.bearer_token != self.token:
            raise ApiError(401, "INVALID_API_KEY", "Invalid, revoked or expired API key")

    def _spend_rate_limit(self) -> None:
        now = time.time()
        window = int(now)
        if window != self._burst_window:
            self._burst_window, self._burst_used = window, 0
        if now >= self._daily_reset:
            self._daily_reset, self._daily_used = _next_midnight_utc(now), 0
        if self.rate_limiting:
            if self._burst_used >= self.burst_limit:
                self._raise_rate_limited(
                    f"Rate limit exceeded. Per-second burst limit of {self.burst_limit} requests "
                    f"exceeded for the {PLANS[self.plan][0]} plan.",
                    math.ceil(window + 1 - now),
                )
            if self._daily_used >= self.daily_limit:
                self._raise_rate_limited(
                    f"Rate limit exceeded. Daily quota of {self.daily_limit} requests exceeded.",
                    math.ceil(self._daily_reset - now),
                )
        self._burst_used += 1
        self._daily_used += 1

    @staticmethod
    def _raise_rate_limited(message: str, retry_after: int) -> None:
        raise ApiError(429, "RATE_LIMITED", message, retry_after=max(1, retry_after))

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.daily_limit),
            "X-RateLimit-Remaining": str(max(0, self.daily_limit - self._daily_used)),
            "X-RateLimit-Reset": str(self._daily_reset or _next_midnight_utc(time.time())),
            "X-RateLimit-Burst-Limit": str(self.burst_limit),
            "X-RateLimit-Burst-Remaining": str(max(0, self.burst_limit - self._burst_used)),
        }

    def _idempotent(self, request: SandboxRequest, request_id: str) -> SandboxResponse:
        """N-A6: replay the first response to an Idempotency-Key on POST and PATCH."""
        key = request.headers.get("idempotency-key", "").strip()
        if request.method not in ("POST", "PATCH") or not key:
            return self._route(request, request_id)
        fingerprint = hashlib.sha256(
            f"{request.method} {request.path}\n".encode() + request.body
        ).hexdigest()
        stored = self.idempotent_responses.get(key)
        if stored is not None:
            stored_fingerprint, stored_response = stored
            if stored_fingerprint != fingerprint:
                raise ApiError(
                    409, "CONFLICT", "This Idempotency-Key was already used for another request"
                )
            replay = copy.deepcopy(stored_response)
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        response = self._route(request, request_id)
        if response.status < 500:
            self.idempotent_responses[key] = (fingerprint, copy.deepcopy(response))
        return response

    # --- Routing --------------------------------------------------------------------------------

    def _route(self, request: SandboxRequest, request_id: str) -> SandboxResponse:
        try:
            result = self._dispatch(request)
        except ApiError as error:
            return self._error_response(error, request_id)
        status, body = result if isinstance(result, tuple) else (200, result)
        if body is None:  # 204 No Content
            return SandboxResponse(status)
        body.setdefault("meta", {})["request_id"] = request_id
        return SandboxResponse(status, body)

    def _dispatch(self, request: SandboxRequest) -> Any:
        """A handler's body (200), or ``(status, body or None)``."""
        parts = [p for p in request.path.split("/") if p]
        if len(parts) not in (2, 3) or parts[0] != "v1":
            raise ApiError(404, "NOT_FOUND", "Route not found")
        collection = parts[1]
        object_id = parts[2] if len(parts) == 3 else None
        routes: dict[tuple[str, bool], dict[str, Callable[..., Any]]] = {
            ("deals", False): {"GET": self._list_deals, "POST": self._create_deal},
            ("deals", True): {
                "GET": self._get_deal,
                "PATCH": self._update_deal,
                "DELETE": self._delete_deal,
            },
            ("activities", False): {"GET": self._list_activities, "POST": self._create_activity},
            ("activities", True): {
                "GET": self._get_activity,
                "PATCH": self._update_activity,
                "DELETE": self._delete_activity,
            },
            ("pipelines", False): {"GET": self._list_pipelines},
            ("pipelines", True): {"GET": self._get_pipeline},
            ("contacts", False): {"GET": self._list_contacts},
            ("contacts", True): {"GET": self._get_contact},
            ("companies", False): {"GET": self._list_companies},
            ("companies", True): {"GET": self._get_company},
        }
        methods = routes.get((collection, object_id is not None))
        if methods is None:
            raise ApiError(404, "NOT_FOUND", "Route not found")
        handler = methods.get(request.method)
        if handler is None:
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here")
        return handler(request, object_id) if object_id is not None else handler(request)

    def _error_response(self, error: ApiError, request_id: str) -> SandboxResponse:
        payload: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.details:
            payload["details"] = error.details
        headers = {}
        if error.retry_after is not None:
            payload["retry_after"] = error.retry_after
            payload["upgrade_url"] = UPGRADE_URL
            headers["Retry-After"] = str(error.retry_after)
        body = {"error": payload, "meta": {"request_id": request_id}}
        return SandboxResponse(error.status, body, headers)

    # --- Shared list machinery ------------------------------------------------------------------

    def _paginate(
        self,
        request: SandboxRequest,
        items: list[dict[str, Any]],
        kind: str,
        *,
        default_limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        raw_limit = request.param("limit", str(default_limit)) or ""
        raw_limit = raw_limit.strip()
        if (
            not (raw_limit.isascii() and raw_limit.isdigit())
            or not 1 <= int(raw_limit) <= MAX_LIMIT
        ):
            raise _validation("limit", f"Number must be between 1 and {MAX_LIMIT}")
        limit = int(raw_limit)
        # A new limit may be sent while following a cursor; every other parameter must match.
        filters = hashlib.sha256(
            json.dumps(
                [
                    request.path,
                    sorted(
                        (k, v)
                        for k, v in request.query.items()
                        if k != "cursor"
                        and (k != "limit" or "cursor_bound_to_limit" in self.variants)
                    ),
                ]
            ).encode()
        ).hexdigest()[:16]
        offset = 0
        cursor = request.param("cursor")
        if cursor:
            offset = self._decode_cursor(cursor, filters)
        page = items[offset : offset + limit]
        has_more = offset + limit < len(items)
        next_cursor = None
        if has_more:
            raw = json.dumps({"offset": offset + limit, "filters": filters}).encode()
            next_cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return {
            "data": [_resource(kind, copy.deepcopy(item)) for item in page],
            "meta": {"pagination": {"next_cursor": next_cursor, "has_more": has_more}},
        }

    @staticmethod
    def _decode_cursor(cursor: str, filters: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            decoded = json.loads(raw)
            offset = decoded["offset"]
            cursor_filters = decoded["filters"]
        except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
            raise _validation("cursor", "Invalid cursor") from None
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise _validation("cursor", "Invalid cursor")
        if cursor_filters != filters:
            raise _validation("cursor", "Cursor does not match the filters or sort of this query")
        return offset

    @staticmethod
    def _sorted(
        request: SandboxRequest,
        items: list[dict[str, Any]],
        allowed: tuple[str, ...],
        key_for: Callable[[dict[str, Any], str], Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Multi-key sort from ``sort=a,-b``; nulls last in both directions; ties by id
        (ascending, whichever the direction: a stable order for equal timestamps)."""
        raw = request.param("sort") or "-created_at"
        keys = []
        for part in raw.split(","):
            part = part.strip()
            descending = part.startswith("-")
            name = part[1:] if descending else part
            if name not in allowed:
                raise _validation("sort", f"Sort by one of: {', '.join(allowed)}")
            keys.append((name, descending))
        ordered = sorted(items, key=lambda item: item["id"])
        for name, descending in reversed(keys):

            def sort_key(item: dict[str, Any], name: str = name) -> Any:
                return key_for(item, name) if key_for else item.get(name)

            present = [item for item in ordered if sort_key(item) is not None]
            missing = [item for item in ordered if sort_key(item) is None]
            ordered = sorted(present, key=sort_key, reverse=descending) + missing
        return ordered

    @staticmethod
    def _includes(request: SandboxRequest, allowed: tuple[str, ...]) -> set[str]:
        raw = request.param("include") or ""
        names = {part.strip() for part in raw.split(",") if part.strip()}
        unknown = names - set(allowed)
        if unknown:
            raise _validation("include", f"Include one of: {', '.join(allowed)}")
        return names

    @staticmethod
    def _object_id(object_id: str, prefix: str, label: str) -> str:
        if not _ID_RE[prefix].match(object_id):
            raise ApiError(404, "NOT_FOUND", f"{label} not found")
        return object_id

    # --- Deals ----------------------------------------------------------------------------------

    def _deals_in_order(self, request: SandboxRequest) -> list[dict[str, Any]]:
        """Every deal in the requested order, sorted once until a deal changes (as a real API's
        index would), so a 10,000-deal seed lists about as fast as the demo seed."""
        sort = request.param("sort") or "-created_at"
        version, order = self._deal_orders.get(sort, (-1, []))
        if version != self._deals_version:
            order = self._sorted(
                request, list(self.deals.values()), DEAL_SORTS, self._deal_sort_key
            )
            self._deal_orders[sort] = (self._deals_version, order)
        return order

    def _list_deals(self, request: SandboxRequest) -> dict[str, Any]:
        for name, prefix in _ID_PARAMS.items():
            wanted = request.param(name)
            if wanted and not _ID_RE[prefix].match(wanted):
                raise _validation(name, f"Invalid ID: expected {prefix}…")
        deals = self._deals_in_order(request)
        for name in ("pipeline_id", "stage_id", "contact_id", "company_id"):
            wanted = request.param(name)
            if wanted:
                deals = [d for d in deals if d.get(name) == wanted]
        tags = [t.strip() for t in (request.param("tags") or "").split(",") if t.strip()]
        if tags:
            deals = [d for d in deals if set(tags) <= _tag_set(d)]
        minimum = self._amount_param(request, "min_value")
        maximum = self._amount_param(request, "max_value")
        if minimum is not None:
            deals = [d for d in deals if _amount(d) is not None and _amount(d) >= minimum]
        if maximum is not None:
            deals = [d for d in deals if _amount(d) is not None and _amount(d) <= maximum]
        return self._paginate(request, deals, "deal")

    @staticmethod
    def _amount_param(request: SandboxRequest, name: str) -> Decimal | None:
        raw = request.param(name)
        if not raw:
            return None
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise _validation(name, "Expected a number") from None
        if not amount.is_finite():
            raise _validation(name, "Expected a number")
        return amount

    @staticmethod
    def _deal_sort_key(deal: dict[str, Any], name: str) -> Any:
        if name == "value":
            return _amount(deal)
        value = deal.get(name)
        return value if isinstance(value, str) else None  # odd types (mutate_deal) sort last

    def _deal(self, object_id: str) -> dict[str, Any]:
        deal = self.deals.get(self._object_id(object_id, "dl_", "Deal"))
        if deal is None:
            raise ApiError(404, "NOT_FOUND", "Deal not found")
        return deal

    def _get_deal(self, request: SandboxRequest, object_id: str) -> dict[str, Any]:
        deal = self._deal(object_id)
        includes = self._includes(request, DEAL_INCLUDES)
        return {"data": _resource("deal", self._deal_attributes(deal, includes))}

    def _deal_attributes(self, deal: dict[str, Any], includes: set[str]) -> dict[str, Any]:
        """N-A1: each included object's flat attributes under its key, or null."""
        attributes = copy.deepcopy(deal)
        if "contact" in includes:
            attributes["contact"] = copy.deepcopy(_lookup(self.contacts, deal.get("contact_id")))
        if "company" in includes:
            attributes["company"] = copy.deepcopy(_lookup(self.companies, deal.get("company_id")))
        if "pipeline" in includes:
            attributes["pipeline"] = copy.deepcopy(_lookup(self.pipelines, deal.get("pipeline_id")))
        if "stage" in includes:
            _, stage = self._find_stage(deal.get("stage_id"))
            attributes["stage"] = copy.deepcopy(stage)
        if "include_enveloped" in self.variants:
            for key, kind in _INCLUDE_TYPES.items():
                if isinstance(attributes.get(key), dict):
                    attributes[key] = _resource(kind, attributes[key])
        return attributes

    def _update_deal(self, request: SandboxRequest, object_id: str) -> dict[str, Any]:
        deal = self._deal(object_id)
        try:
            body = request.json()
        except BadJson:
            raise ApiError(400, "VALIDATION_ERROR", "Malformed JSON body") from None
        if not isinstance(body, dict):
            raise _validation("body", "Expected an object")
        changes = self._validated_deal_changes(deal, body)
        if not changes:
            return {"data": _resource("deal", copy.deepcopy(deal))}
        # Validation is complete: only now is the deal touched.
        custom_fields = changes.pop("custom_fields", None)
        if custom_fields is not None:
            deal["custom_fields"] = {**(deal.get("custom_fields") or {}), **custom_fields}
        new_stage = changes.pop("stage", None)
        deal.update(changes)
        if new_stage is not None and new_stage["id"] != deal["stage_id"]:
            self._move_to_stage(deal, new_stage)
        self._touch(deal)
        return {"data": _resource("deal", copy.deepcopy(deal))}

    def _validated_deal_changes(self, deal: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Every field checked before anything changes: 400s first, then 422s."""
        changes: dict[str, Any] = {}
        details: list[dict[str, str]] = []
        for name in _NULLABLE_DEAL_FIELDS:
            if name in body and body[name] is None:
                changes[name] = None  # N-A3: null clears a nullable field
        if "title" in body:
            title = body["title"]
            if not isinstance(title, str) or not title.strip():
                details.append(_detail("title", "Title is required"))
            elif len(title) > MAX_TITLE_LENGTH:
                details.append(
                    _detail("title", f"String must contain at most {MAX_TITLE_LENGTH} character(s)")
                )
            else:
                changes["title"] = title
        if body.get("value") is not None:
            value = self._parse_value(body["value"])
            if value is None:
                details.append(_detail("value", "Expected a number between 0 and 10^13"))
            else:
                changes["value"] = value
        if "currency" in body:
            currency = body["currency"]
            if not isinstance(currency, str) or not _CURRENCY_RE.match(currency):
                details.append(_detail("currency", "Expected a 3-letter currency code"))
            else:
                changes["currency"] = currency.upper()
        if "stage_id" in body:
            stage_id = body["stage_id"]
            pipeline = _lookup(self.pipelines, deal.get("pipeline_id")) or {}
            stage = next(
                (s for s in pipeline.get("stages", []) if s["id"] == stage_id),
                None,
            )
            if stage is None:  # N-A4
                details.append(
                    _detail("stage_id", "Stage must belong to the deal's current pipeline")
                )
            else:
                changes["stage"] = stage
        if "tags" in body:
            tags = body["tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                details.append(_detail("tags", "Expected an array of strings"))
            elif len(tags) > MAX_TAGS:
                details.append(_detail("tags", f"Array must contain at most {MAX_TAGS} element(s)"))
            else:
                changes["tags"] = list(tags)  # N-A2: the list is replaced
        if "custom_fields" in body:
            custom_fields = body["custom_fields"]
            if not isinstance(custom_fields, dict):
                details.append(_detail("custom_fields", "Expected an object"))
            else:
                changes["custom_fields"] = copy.deepcopy(custom_fields)
        if body.get("expected_close_date") is not None:
            expected = body["expected_close_date"]
            if not isinstance(expected, str) or not self._is_date(expected):
                details.append(_detail("expected_close_date", "Expected a date YYYY-MM-DD"))
            else:
                changes["expected_close_date"] = expected
        linked = {
            "contact_id": (self.contacts, "Contact"),
            "company_id": (self.companies, "Company"),
        }
        missing_link = None
        for name, (table, label) in linked.items():
            if body.get(name) is None:
                continue
            if not isinstance(body[name], str):
                details.append(_detail(name, "Expected a string"))
            elif body[name] not in table:
                missing_link = missing_link or f"{label} not found"
            else:
                changes[name] = body[name]
        if details:
            raise ApiError(400, "VALIDATION_ERROR", "Request validation failed", details)
        if missing_link:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", missing_link)
        return changes

    @staticmethod
    def _parse_value(raw: Any) -> str | None:
        """A JSON number → decimal string with 2 places; anything else → None (invalid)."""
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None
        try:
            amount = Decimal(str(raw))
        except InvalidOperation:
            return None
        if not amount.is_finite() or amount < 0 or amount >= MAX_VALUE:
            return None
        return str(amount.quantize(CENTS, ROUND_HALF_UP))

    @staticmethod
    def _is_date(text: str) -> bool:
        if not _DATE_RE.match(text):
            return False
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return False
        return True

    def _find_stage(self, stage_id: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        for pipeline in self.pipelines.values():
            for stage in pipeline["stages"]:
                if stage["id"] == stage_id:
                    return pipeline, stage
        return {}, None

    def _move_to_stage(self, deal: dict[str, Any], stage: dict[str, Any]) -> None:
        """``closed_at`` is set on a move to a won/lost stage, cleared on a move to an open one."""
        deal["stage_id"] = stage["id"]
        if stage["type"] in ("won", "lost"):
            deal["closed_at"] = self._next_timestamp(deal)
        else:
            deal["closed_at"] = None

    def _next_timestamp(self, item: dict[str, Any]) -> str:
        """Now, but at least a second after the item's last update and never before the latest
        stamp handed out, so "updated since" never misses a change."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        stamp = format_timestamp(now)
        try:
            previous = parse_timestamp(item["updated_at"])
        except (KeyError, TypeError, ValueError):
            pass
        else:
            stamp = max(stamp, format_timestamp(previous + dt.timedelta(seconds=1)))
        return max(stamp, self._last_stamp)

    def _changed(self) -> None:
        """Any deal changed: the cached sort orders are out of date."""
        self._deals_version = getattr(self, "_deals_version", 0) + 1
        self._deal_orders: dict[str, tuple[int, list[dict[str, Any]]]] = {}

    def _touch(self, deal: dict[str, Any]) -> None:
        self._changed()
        deal["updated_at"] = self._last_stamp = self._next_timestamp(deal)
        closed_at = deal.get("closed_at")
        if isinstance(closed_at, str) and closed_at > deal["updated_at"]:
            deal["closed_at"] = deal["updated_at"]

    # --- Pipelines ------------------------------------------------------------------------------

    def _list_pipelines(self, request: SandboxRequest) -> dict[str, Any]:
        return self._paginate(request, list(self.pipelines.values()), "pipeline")

    def _get_pipeline(self, request: SandboxRequest, object_id: str) -> dict[str, Any]:
        pipeline = self.pipelines.get(self._object_id(object_id, "pp_", "Pipeline"))
        if pipeline is None:
            raise ApiError(404, "NOT_FOUND", "Pipeline not found")
        attributes = copy.deepcopy(pipeline)
        if "deal_count" in self._includes(request, ("deal_count",)):
            per_stage: dict[str, int] = {}
            for deal in self.deals.values():
                if deal.get("pipeline_id") == pipeline["id"]:
                    stage_id = str(deal.get("stage_id"))
                    per_stage[stage_id] = per_stage.get(stage_id, 0) + 1
            for stage in attributes["stages"]:
                stage["deal_count"] = per_stage.get(stage["id"], 0)
            attributes["deal_count"] = sum(per_stage.values())
        return {"data": _resource("pipeline", attributes)}

    # --- Contacts and companies -----------------------------------------------------------------

    @staticmethod
    def _filtered(
        request: SandboxRequest,
        items: list[dict[str, Any]],
        substring: tuple[str, ...],
        exact: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        for name in substring:
            wanted = (request.param(name) or "").lower()
            if wanted:
                items = [i for i in items if wanted in str(i.get(name) or "").lower()]
        for name in exact:
            wanted = request.param(name) or ""
            if wanted:
                items = [i for i in items if i.get(name) == wanted]
        tags = [t.strip() for t in (request.param("tags") or "").split(",") if t.strip()]
        if tags:
            items = [i for i in items if set(tags) <= _tag_set(i)]
        return items

    def _list_contacts(self, request: SandboxRequest) -> dict[str, Any]:
        contacts = self._filtered(
            request,
            list(self.contacts.values()),
            ("email", "first_name", "last_name"),
            ("company_id", "source"),
        )
        contacts = self._sorted(request, contacts, CONTACT_SORTS)
        return self._paginate(request, contacts, "contact")

    def _get_contact(self, request: SandboxRequest, object_id: str) -> dict[str, Any]:
        contact = self.contacts.get(self._object_id(object_id, "ct_", "Contact"))
        if contact is None:
            raise ApiError(404, "NOT_FOUND", "Contact not found")
        attributes = copy.deepcopy(contact)
        if "company" in self._includes(request, ("company",)):
            attributes["company"] = copy.deepcopy(
                _lookup(self.companies, contact.get("company_id"))
            )
        return {"data": _resource("contact", attributes)}

    def _list_companies(self, request: SandboxRequest) -> dict[str, Any]:
        companies = self._filtered(
            request, list(self.companies.values()), ("name", "domain", "industry"), ("size",)
        )
        companies = self._sorted(request, companies, COMPANY_SORTS)
        return self._paginate(request, companies, "company")

    def _get_company(self, request: SandboxRequest, object_id: str) -> dict[str, Any]:
        company = self.companies.get(self._object_id(object_id, "co_", "Company"))
        if company is None:
            raise ApiError(404, "NOT_FOUND", "Company not found")
        attributes = copy.deepcopy(company)
        includes = self._includes(request, ("contacts", "contact_count"))
        members = [c for c in self.contacts.values() if c.get("company_id") == company["id"]]
        if "contacts" in includes:
            attributes["contacts"] = copy.deepcopy(members)
        if "contact_count" in includes:
            attributes["contact_count"] = len(members)
        return {"data": _resource("company", attributes)}

    # --- Create and delete deals (§19) ------------------------------------------------------------

    @staticmethod
    def _object_body(request: SandboxRequest) -> dict[str, Any]:
        try:
            body = request.json()
        except BadJson:
            raise ApiError(400, "VALIDATION_ERROR", "Malformed JSON body") from None
        if not isinstance(body, dict):
            raise _validation("body", "Expected an object")
        return body

    def _create_deal(self, request: SandboxRequest) -> tuple[int, dict[str, Any]]:
        body = self._object_body(request)
        pipeline_id = body.get("pipeline_id")
        if pipeline_id is None:
            pipeline = next(
                (p for p in self.pipelines.values() if p.get("is_default")),
                next(iter(self.pipelines.values())),
            )
        elif not isinstance(pipeline_id, str):
            raise _validation("pipeline_id", "Expected a string")
        elif pipeline_id not in self.pipelines:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", "Pipeline not found")
        else:
            pipeline = self.pipelines[pipeline_id]
        # "title" is required here; everything else is checked as a PATCH would check it.
        changes = self._validated_deal_changes(
            {"pipeline_id": pipeline["id"]}, {"title": None, **body}
        )
        stage = changes.pop("stage", None) or next(
            s for s in pipeline["stages"] if s["type"] == "open"
        )
        deal: dict[str, Any] = {
            "id": "dl_" + uuid.uuid4().hex[:20],
            "title": "",
            "value": None,
            "currency": "EUR",
            "pipeline_id": pipeline["id"],
            "stage_id": stage["id"],
            "contact_id": None,
            "company_id": None,
            "owner_id": None,
            "expected_close_date": None,
            "closed_at": None,
            "custom_fields": {},
            "tags": [],
        }
        deal.update(changes)
        self._move_to_stage(deal, stage)
        self._touch(deal)
        deal["created_at"] = deal["updated_at"]
        self.deals[deal["id"]] = deal
        return 201, {"data": _resource("deal", copy.deepcopy(deal))}

    def _delete_deal(self, request: SandboxRequest, object_id: str) -> tuple[int, None]:
        self.delete_deal(self._deal(object_id)["id"])
        return 204, None

    # --- Activities (§20) -----------------------------------------------------------------------

    def _activity(self, object_id: str) -> dict[str, Any]:
        activity = self.activities.get(self._object_id(object_id, "act_", "Activity"))
        if activity is None:
            raise ApiError(404, "NOT_FOUND", "Activity not found")
        return activity

    def _list_activities(self, request: SandboxRequest) -> dict[str, Any]:
        activities = list(self.activities.values())
        for name in ("type", "contact_id", "company_id", "deal_id"):
            wanted = request.param(name)
            if wanted:
                activities = [a for a in activities if a.get(name) == wanted]
        is_done = request.param("is_done")
        if is_done:
            if is_done not in ("true", "false"):
                raise _validation("is_done", 'Expected "true" or "false"')
            activities = [a for a in activities if a.get("is_done") is (is_done == "true")]
        sorts = ACTIVITY_SORTS
        if "activity_sort_created_only" in self.variants:
            sorts = ("created_at",)
        activities = self._sorted(request, activities, sorts)
        return self._paginate(request, activities, "activity", default_limit=DEFAULT_ACTIVITY_LIMIT)

    def _get_activity(self, request: SandboxRequest, object_id: str) -> dict[str, Any]:
        return {"data": _resource("activity", copy.deepcopy(self._activity(object_id)))}

    def _create_activity(self, request: SandboxRequest) -> tuple[int, dict[str, Any]]:
        body = self._object_body(request)
        changes = self._validated_activity_changes({"type": None, "subject": None, **body})
        activity: dict[str, Any] = {
            "id": "act_" + uuid.uuid4().hex[:20],
            "type": "note",
            "subject": "",
            "body": None,
            "contact_id": None,
            "company_id": None,
            "deal_id": None,
            "owner_id": None,
            "is_done": False,
            "due_date": None,
            "completed_at": None,
            "metadata": {},
            "tags": [],
        }
        self._apply_activity_changes(activity, changes)
        activity["created_at"] = activity["updated_at"]
        self.activities[activity["id"]] = activity
        return 201, {"data": _resource("activity", copy.deepcopy(activity))}

    def _update_activity(self, request: SandboxRequest, object_id: str) -> dict[str, Any]:
        if "activity_patch_405" in self.variants:
            raise ApiError(405, "METHOD_NOT_ALLOWED", "PATCH is not allowed here")
        activity = self._activity(object_id)
        changes = self._validated_activity_changes(self._object_body(request))
        if changes:
            self._apply_activity_changes(activity, changes)
        return {"data": _resource("activity", copy.deepcopy(activity))}

    def _delete_activity(self, request: SandboxRequest, object_id: str) -> tuple[int, None]:
        del self.activities[self._activity(object_id)["id"]]
        return 204, None

    def _apply_activity_changes(self, activity: dict[str, Any], changes: dict[str, Any]) -> None:
        was_done = activity.get("is_done") is True
        activity.update(changes)
        stamp = self._next_timestamp(activity)
        activity["updated_at"] = self._last_stamp = stamp
        if activity["is_done"] and not was_done:
            activity["completed_at"] = stamp
        elif not activity["is_done"]:
            activity["completed_at"] = None

    def _validated_activity_changes(self, body: dict[str, Any]) -> dict[str, Any]:
        """Every field checked before anything changes: 400s first, then 422s. Unknown and
        server-managed fields are ignored, as for deals."""
        changes: dict[str, Any] = {}
        details: list[dict[str, str]] = []
        if "type" in body:
            if body["type"] not in ACTIVITY_TYPES:
                details.append(_detail("type", f"Expected one of: {', '.join(ACTIVITY_TYPES)}"))
            else:
                changes["type"] = body["type"]
        if "subject" in body:
            subject = body["subject"]
            if not isinstance(subject, str) or not subject.strip():
                details.append(_detail("subject", "Subject is required"))
            elif len(subject) > MAX_SUBJECT_LENGTH:
                details.append(
                    _detail(
                        "subject",
                        f"String must contain at most {MAX_SUBJECT_LENGTH} character(s)",
                    )
                )
            else:
                changes["subject"] = subject
        if "body" in body:
            if body["body"] is not None and not isinstance(body["body"], str):
                details.append(_detail("body", "Expected a string"))
            else:
                changes["body"] = body["body"]
        if "due_date" in body:
            due = body["due_date"]
            if due is None:
                changes["due_date"] = None
            elif isinstance(due, str) and self._is_date(due):
                changes["due_date"] = due
            elif isinstance(due, str) and self._utc_timestamp(due):
                changes["due_date"] = self._utc_timestamp(due)
            else:
                details.append(_detail("due_date", "Expected a date YYYY-MM-DD or a date-time"))
        if "is_done" in body:
            if not isinstance(body["is_done"], bool):
                details.append(_detail("is_done", "Expected a boolean"))
            else:
                changes["is_done"] = body["is_done"]
        if "tags" in body:
            tags = body["tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                details.append(_detail("tags", "Expected an array of strings"))
            elif len(tags) > MAX_TAGS:
                details.append(_detail("tags", f"Array must contain at most {MAX_TAGS} element(s)"))
            else:
                changes["tags"] = list(tags)
        if "metadata" in body:
            if not isinstance(body["metadata"], dict):
                details.append(_detail("metadata", "Expected an object"))
            else:
                changes["metadata"] = copy.deepcopy(body["metadata"])
        linked = {
            "deal_id": (self.deals, "Deal"),
            "contact_id": (self.contacts, "Contact"),
            "company_id": (self.companies, "Company"),
        }
        missing_link = None
        for name, (table, label) in linked.items():
            if name not in body:
                continue
            if body[name] is None:
                changes[name] = None
            elif not isinstance(body[name], str):
                details.append(_detail(name, "Expected a string"))
            elif body[name] not in table:
                missing_link = missing_link or f"{label} not found"
            else:
                changes[name] = body[name]
        if details:
            raise ApiError(400, "VALIDATION_ERROR", "Request validation failed", details)
        if missing_link:
            raise ApiError(422, "UNPROCESSABLE_ENTITY", missing_link)
        return changes

    @staticmethod
    def _utc_timestamp(text: str) -> str | None:
        """An ISO 8601 date-time with a zone, as nodestash's UTC ``Z`` form; None if not one."""
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        if "T" not in text.upper() or moment.tzinfo is None:
            return None
        try:
            return format_timestamp(moment)
        except (OverflowError, ValueError):
            return None
