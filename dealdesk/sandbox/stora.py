"""A faithful in-memory simulation of the Stora Public API 2025-09, as ``../shared/api/stora.md``
describes it: the CONFIRMED behaviour and every ASSUMED one (S-A1..S-A10) alike.

Paths arrive without the ``/stora`` prefix (``/2025-09/deals``). ``handle`` runs under the
sandbox's lock, never raises and never changes state for a request it refuses: every body is
validated in full before anything is applied. The clock is injectable so tests control time.

Also simulated (§15-17): creating deals (S-A13, answered 201), unit types and protection levels,
and webhook endpoints. Every deal change (PATCH, win, lose, reopen, create, ``mutate_deal``) is
stamped with an ``updated_at`` at least a second after the deal's previous one and never before
the latest stamp given to any change, and POSTs a signed ``deal.lost`` (lose, or a mutation to
lost) or ``deal.updated`` (everything else, S-A12) to every registered endpoint, from a
background thread (``dealdesk/sandbox/webhooks.py``). Webhook endpoints, sandbox choices: ids
``whe_…``; create answers 201 with the ``secret`` (``whsec_…``), which the list never shows again;
``DELETE /2025-09/webhook_endpoints/{id}`` answers 204; ``url`` must start ``https://``, except
that ``http://`` to loopback (``127.0.0.1``, ``localhost``, ``[::1]``) is accepted so the sandbox
can call a local DealDesk. Deals can be deleted only through the control API (Stora documents no
delete).

Not simulated: OAuth, scopes (403 comes from ``Sandbox.fail_next``) and CSV output
(``Accept: text/csv`` answers 406 ``invalid_format``).
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import hmac
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from dealdesk.sandbox.core import BadJson, SandboxRequest, SandboxResponse
from dealdesk.sandbox.seed_stora import API_APPLICATION_ID, LOST_REASONS, build_stora_seed, iso
from dealdesk.sandbox.webhooks import WebhookSender

VERSION = "2025-09"
MAX_LIMIT, DEFAULT_LIMIT = 100, 50
DEAL_STATUSES = ("open", "won", "lost")
EXPANDABLE = ("assignee", "creator", "contact", "site", "stage")  # S-A3
DEAL_SORT_FIELDS = ("created_at", "updated_at")  # S-A1
STAGE_SORT_FIELDS = ("created_at", "updated_at", "position")
CONTACT_SORT_FIELDS = ("created_at", "updated_at", "full_name")
RATE_LIMITS = ((10, 1), (60, 60))  # requests per window (seconds), counted per token (S-A10)
IDEMPOTENCY_TTL = 24 * 3600
PAST_TENSE = {"win": "won", "lose": "lost", "reopen": "reopened"}
# Id-typed list filters and the id pattern each must match; anything else is a 422 (§10).
ID_PARAMS = {
    "stage_id": "dstg_",
    "assignee_id": "staff_",
    "contact_id": "con_",
    "site_id": "site_",
}
ID_PATTERN = re.compile(r"^[a-z]+_[A-Za-z0-9]+$")
# The other documented way each ASSUMED read could turn out (``Sandbox.set_variants``):
VARIANTS = frozenset(
    {
        "staff_404",  # S-A9: there is no GET /2025-09/staff
        "expand_422",  # S-A3: expand is refused
        "filters_422",  # S-A2: the deals list refuses status, stage_id, search… filters
        "sort_422",  # S-A1: the deals list refuses sort_by and sort_direction
        "catalogue_403",  # S-A15: the token may not read unit types and protection levels
    }
)
FILTER_PARAMS = ("status", "stage_id", "assignee_id", "contact_id", "site_id", "search")
# Stora's examples omit these from list/win/lose/reopen bodies; show and update include them.
SHOW_ONLY_DEAL_FIELDS = ("metadata", "note")
WEBHOOK_EVENT_TYPES = ("deal.updated", "deal.lost")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")  # sandbox-only: http:// allowed to these

CURIES = [
    {"name": "bo", "href": "https://app.stora.test{rel}", "templated": True, "title": "Backoffice"},
    {
        "name": "sf",
        "href": "https://acme.stora.test{rel}",
        "templated": True,
        "title": "Storefront",
    },
]
ERROR_LINKS = [
    {
        "kind": "open_api",
        "name": "OpenAPI specification",
        "url": "https://public-api.stora.co/2025-09/openapi.json",
    },
    {
        "kind": "documentation",
        "name": "Errors",
        "url": "https://docs.stora.co/public-api#overview--errors",
    },
]
ERROR_MESSAGES = {
    "invalid_request": "The request body is malformed or not valid.",
    "invalid_token": "Invalid token.",
    "forbidden": "You do not have permission to access this resource.",
    "resource_not_found": "The requested resource was not found.",
    "invalid_endpoint": "The requested endpoint does not exist.",
    "invalid_format": "The requested format is not supported.",
    "conflict": (
        "The resource cannot be deleted or modified due to existing dependencies or "
        "business constraints."
    ),
    "invalid_url_param": "A URL parameter is not valid.",
    "invalid_content": "The request body content is not valid.",
    "too_many_requests": (
        "Rate Limit Exceeded. You have reached the maximum number of requests. "
        "Please try again later."
    ),
    "internal_server_error": "Unexpected internal error.",
}


class StoraError(Exception):
    """A refusal in Stora's error envelope (stora.md §10)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str | None = None,
        details: Iterable[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "")
        self.details = list(details)
        self.headers = dict(headers or {})


def _pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) into the request body."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _detail(pointer: str, problem: str) -> dict[str, str]:
    return {"message": f"value at `{pointer}` {problem}", "pointer": pointer}


def _epoch(timestamp: Any) -> int | None:
    try:
        return calendar.timegm(time.strptime(str(timestamp), "%Y-%m-%dT%H:%M:%SZ"))
    except (ValueError, OverflowError):
        return None


def _parse_datetime(value: str) -> str | None:
    """ISO 8601 date-time with a zone -> Stora's UTC ``Z`` form; None if not one."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if "T" not in value.upper() or parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError):
        return None


class StoraSimulator:
    """Stora deals, stages, staff, contacts and sites, over the sandbox's HTTP server."""

    name = "stora"
    VARIANTS = VARIANTS

    def __init__(self, token: str, *, clock: Callable[[], float] = time.time) -> None:
        self.token = token
        self.rate_limiting = True
        self.clock = clock
        self.variants: set[str] = set()
        self.webhooks = WebhookSender()
        self.reset("demo")

    # --- state ------------------------------------------------------------------------------

    def reset(self, seed: str) -> None:
        data = build_stora_seed(seed, now=self.clock())
        self.deals: dict[str, dict[str, Any]] = {d["id"]: d for d in data.deals}
        self.stages = {s["id"]: s for s in data.stages}
        self.staff = {s["id"]: s for s in data.staff}
        self.contacts = {c["id"]: c for c in data.contacts}
        self.sites = {s["id"]: s for s in data.sites}
        self.unit_types = {u["id"]: u for u in data.unit_types}
        self.protection_levels = {p["id"]: p for p in data.protection_levels}
        self.idempotency: dict[tuple[str, str], tuple[float, SandboxResponse]] = {}
        self.request_times: dict[str, deque[float]] = {}  # per token (S-A10)
        self.variants = set()
        self.webhook_endpoints: dict[str, dict[str, Any]] = {}
        self.webhooks.reset()
        self._last_stamp = 0
        self._changed()

    def mutate_deal(self, deal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply raw Stora-shaped changes as another user would; ``updated_at`` moves forward."""
        deal = self.deals[deal_id]
        was_lost = deal.get("status") == "lost"
        deal.update(copy.deepcopy(changes))
        self._changed()
        if "updated_at" not in changes:
            self._touch(deal)
        lost_now = deal.get("status") == "lost" and not was_lost
        self._emit(deal, "deal.lost" if lost_now else "deal.updated")
        return copy.deepcopy(deal)

    def delete_deal(self, deal_id: str) -> None:
        """Remove a deal as if it were deleted in Backoffice; no webhook is sent."""
        del self.deals[deal_id]
        self._changed()

    def register_webhook(
        self,
        url: str,
        *,
        secret: str | None = None,
        event_types: Iterable[str] = WEBHOOK_EVENT_TYPES,
        name: str = "DealDesk",
    ) -> dict[str, Any]:
        """Add a webhook endpoint directly (no URL checks); returns it with its secret."""
        now = iso(self.clock())
        endpoint = {
            "id": "whe_" + uuid.uuid4().hex[:16],
            "api_version": VERSION,
            "created_at": now,
            "description": None,
            "event_types": list(event_types),
            "metadata": {},
            "name": name,
            "secret": secret or "whsec_" + uuid.uuid4().hex,
            "status": "enabled",
            "updated_at": now,
            "url": url,
        }
        self.webhook_endpoints[endpoint["id"]] = endpoint
        return copy.deepcopy(endpoint)

    def _emit(self, deal: dict[str, Any], event_type: str) -> None:
        """Queue a signed event for every endpoint that wants it; sent later, off the lock."""
        targets = [
            (endpoint["id"], endpoint["url"], endpoint["secret"])
            for endpoint in self.webhook_endpoints.values()
            if event_type in endpoint["event_types"]
        ]
        if not targets:
            return
        event = {
            "event": {
                "id": "evt_" + uuid.uuid4().hex,
                "type": event_type,
                "api_version": VERSION,
                "created_at": iso(self.clock()),
                "data": {"deal": self._present(deal, set(EXPANDABLE))},
            }
        }
        self.webhooks.enqueue(event, targets, str(deal.get("id")))

    def _changed(self) -> None:
        """Any deal changed: the cached sort orders are out of date."""
        self._deals_version = getattr(self, "_deals_version", 0) + 1
        self._deal_orders: dict[tuple[str, bool], tuple[int, list[dict[str, Any]]]] = {}

    def _touch(self, deal: dict[str, Any]) -> None:
        """Bump ``updated_at``, always at least a second past the previous value, so a change
        is visible to a client comparing timestamps even within one second."""
        self._changed()
        stamp = max(int(self.clock()), self._last_stamp)
        previous = _epoch(deal.get("updated_at"))
        if previous is not None:
            stamp = max(stamp, previous + 1)
        self._last_stamp = stamp
        deal["updated_at"] = iso(stamp)

    # --- dispatch ---------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        request_id = "req_" + uuid.uuid4().hex
        idempotency_key = None
        try:
            token = request.bearer_token
            if not token or not hmac.compare_digest(token.encode(), self.token.encode()):
                raise StoraError(401, "invalid_token")
            if self.rate_limiting:
                self._spend_rate(token)
            if not self._accepts_json(request.headers.get("accept", "")):
                raise StoraError(406, "invalid_format")
            if request.method == "POST" and request.headers.get("idempotency-key"):
                idempotency_key = (token, request.headers["idempotency-key"])
                stored = self.idempotency.get(idempotency_key)
                if stored and stored[0] + IDEMPOTENCY_TTL > self.clock():
                    replay = stored[1]
                    headers = {**replay.headers, "Idempotent-Replayed": "true"}
                    return SandboxResponse(replay.status, copy.deepcopy(replay.body), headers)
            status, body = self._route(request)
            if status == 204:
                response = SandboxResponse(204)
            else:
                response = SandboxResponse(status, {**body, "meta": self._meta(request_id, body)})
        except StoraError as error:
            response = self._error_response(error, request_id)
        except Exception as error:  # never crash, never leak a traceback shape
            response = self._error_response(
                StoraError(500, "internal_server_error", f"Unexpected internal error: {error!r}"),
                request_id,
            )
        response.headers["X-Request-Id"] = request_id
        if idempotency_key and response.status not in (401, 429):
            self.idempotency[idempotency_key] = (self.clock(), copy.deepcopy(response))
        return response

    def _meta(self, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
        meta = {"request_id": request_id, "curies": copy.deepcopy(CURIES)}
        if "pagination" in body.get("meta", {}):
            meta["pagination"] = body["meta"]["pagination"]
        return meta

    def _error_response(self, error: StoraError, request_id: str) -> SandboxResponse:
        error_type = (
            "api_error"
            if error.code in ("api_error", "internal_server_error")
            else ("invalid_request_error")
        )
        body = {
            "error": {
                "code": error.code,
                "details": error.details,
                "links": copy.deepcopy(ERROR_LINKS),
                "message": error.message,
                "request_id": request_id,
                "type": error_type,
            }
        }
        return SandboxResponse(error.status, body, dict(error.headers))

    @staticmethod
    def _accepts_json(accept: str) -> bool:
        if not accept.strip():
            return True
        media = {part.split(";")[0].strip().lower() for part in accept.split(",")}
        return bool(media & {"*/*", "application/*", "application/json"})

    def _spend_rate(self, token: str) -> None:
        """10/s and 60/min per token over sliding windows; a refused request is not counted."""
        now = self.clock()
        times = self.request_times.setdefault(token, deque())
        longest = max(window for _, window in RATE_LIMITS)
        while times and times[0] <= now - longest:
            times.popleft()
        for allowed, window in RATE_LIMITS:
            in_window = [t for t in times if t > now - window]
            if len(in_window) >= allowed:
                reset_at = in_window[len(in_window) - allowed] + window
                headers = {
                    "RateLimit-Limit": str(allowed),
                    "RateLimit-Reset": str(math.ceil(reset_at)),
                }
                raise StoraError(429, "too_many_requests", headers=headers)
        times.append(now)

    def _route(self, request: SandboxRequest) -> tuple[int, dict[str, Any]]:
        segments = request.path.strip("/").split("/")
        if len(segments) < 2 or segments[0] != VERSION:
            raise StoraError(404, "invalid_endpoint")
        method, rest = request.method, segments[1:]
        match rest:
            case ["deals"] if method == "GET":
                return 200, self._list_deals(request)
            case ["deals"] if method == "POST":
                return 201, self._create_deal(request)
            case ["deals", "stages"] if method == "GET":
                return 200, self._list(request, "stages", self.stages, STAGE_SORT_FIELDS)
            case ["deals", "stages", stage_id] if method == "GET":
                return 200, {"stage": copy.deepcopy(self._find(self.stages, stage_id, "dstg_"))}
            case ["deals", deal_id] if method == "GET":
                deal = self._find(self.deals, deal_id, "deal_")
                return 200, {"deal": self._present(deal, self._expand(request))}
            case ["deals", deal_id] if method == "PATCH":
                return 200, self._update_deal(request, deal_id)
            case ["deals", deal_id, ("win" | "lose" | "reopen") as action] if method == "POST":
                return 200, self._transition(request, deal_id, action)
            case ["staff"] if method == "GET" and "staff_404" not in self.variants:
                return 200, self._list(request, "staff", self.staff, DEAL_SORT_FIELDS)
            case ["contacts"] if method == "GET":
                return 200, self._list(request, "contacts", self.contacts, CONTACT_SORT_FIELDS)
            case ["contacts", contact_id] if method == "GET":
                return 200, {
                    "contact": copy.deepcopy(self._find(self.contacts, contact_id, "con_"))
                }
            case ["sites"] if method == "GET":
                return 200, self._list(request, "sites", self.sites, DEAL_SORT_FIELDS)
            case ["sites", site_id] if method == "GET":
                return 200, {"site": copy.deepcopy(self._find(self.sites, site_id, "site_"))}
            case ["unit_types" | "protection_levels"] if "catalogue_403" in self.variants:
                raise StoraError(403, "forbidden")
            case ["unit_types"] if method == "GET":
                return 200, self._list(request, "unit_types", self.unit_types, ())
            case ["protection_levels"] if method == "GET":
                return 200, self._list(request, "protection_levels", self.protection_levels, ())
            case ["webhook_endpoints"] if method == "GET":
                return 200, self._list(
                    request,
                    "webhook_endpoints",
                    self.webhook_endpoints,
                    (),
                    present=self._present_endpoint,
                )
            case ["webhook_endpoints"] if method == "POST":
                return 201, self._create_webhook_endpoint(request)
            case ["webhook_endpoints", endpoint_id] if method == "GET":
                endpoint = self._find(self.webhook_endpoints, endpoint_id, "whe_")
                return 200, {"webhook_endpoint": self._present_endpoint(endpoint)}
            case ["webhook_endpoints", endpoint_id] if method == "DELETE":
                self._find(self.webhook_endpoints, endpoint_id, "whe_")
                del self.webhook_endpoints[endpoint_id]
                return 204, {}
        raise StoraError(404, "invalid_endpoint")

    @staticmethod
    def _find(table: dict[str, dict[str, Any]], object_id: str, prefix: str) -> dict[str, Any]:
        if not object_id.startswith(prefix) or object_id not in table:
            raise StoraError(404, "resource_not_found")
        return table[object_id]

    # --- query parameters -------------------------------------------------------------------

    @staticmethod
    def _url_error(param: str, problem: str) -> StoraError:
        detail = {"message": f"value at `{param}` {problem}", "pointer": _pointer(param)}
        return StoraError(422, "invalid_url_param", details=[detail])

    def _int_param(self, request: SandboxRequest, name: str, default: int, top: int | None) -> int:
        raw = request.param(name)
        if raw is None:
            return default
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1 or (top and int(raw) > top):
            bound = f"between 1 and {top}" if top else "at least 1"
            raise self._url_error(name, f"must be an integer {bound}")
        return int(raw)

    def _sorting(self, request: SandboxRequest, fields: tuple[str, ...]) -> tuple[str, bool]:
        sort_by = request.param("sort_by")
        if sort_by is not None and sort_by not in fields:
            raise self._url_error("sort_by", f"must be one of: {', '.join(fields) or '(none)'}")
        direction = (request.param("sort_direction") or "DESC").upper()
        if direction not in ("ASC", "DESC"):
            raise self._url_error("sort_direction", "must be one of: ASC, DESC")
        return sort_by or "created_at", direction == "DESC"

    def _expand(self, request: SandboxRequest) -> set[str]:
        names = {part.strip() for part in (request.param("expand") or "").split(",")} - {""}
        if names and "expand_422" in self.variants:
            raise self._url_error("expand", "is not a permitted parameter")
        unknown = names - set(EXPANDABLE)
        if unknown:
            raise self._url_error("expand", f"must be among: {', '.join(EXPANDABLE)}")
        return names

    def _list(
        self,
        request: SandboxRequest,
        key: str,
        table: dict[str, dict[str, Any]],
        sort_fields: tuple[str, ...],
        *,
        rows: list[dict[str, Any]] | None = None,
        present: Callable[[dict[str, Any]], dict[str, Any]] = copy.deepcopy,
        presorted: bool = False,
    ) -> dict[str, Any]:
        page = self._int_param(request, "page", 1, None)
        limit = self._int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        sort_by, descending = self._sorting(request, sort_fields)
        items = list(table.values()) if rows is None else rows
        if not presorted:
            items.sort(key=lambda item: self._sort_key(item, sort_by), reverse=descending)
        count = len(items)
        pages = max(1, math.ceil(count / limit))
        chunk = items[(page - 1) * limit : page * limit]
        pagination = {
            "count": count,
            "last": pages,
            "limit": limit,
            "next": page + 1 if page < pages else None,
            "page": page,
            "pages": pages,
            "prev": page - 1 if page > 1 else None,
        }
        return {key: [present(item) for item in chunk], "meta": {"pagination": pagination}}

    @staticmethod
    def _sort_key(item: dict[str, Any], sort_by: str) -> tuple[Any, ...]:
        value = item.get(sort_by)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, value, "", str(item.get("id")))
        return (1, 0, str(value or "").casefold(), str(item.get("id")))

    # --- deals ------------------------------------------------------------------------------

    def _deals_in_order(self, request: SandboxRequest) -> list[dict[str, Any]]:
        """Every deal in the requested order, sorted once until a deal changes (as a real API's
        index would), so a 10,000-deal seed lists about as fast as the demo seed."""
        sort_by, descending = self._sorting(request, DEAL_SORT_FIELDS)
        version, order = self._deal_orders.get((sort_by, descending), (-1, []))
        if version != self._deals_version:
            order = sorted(
                self.deals.values(),
                key=lambda item: self._sort_key(item, sort_by),
                reverse=descending,
            )
            self._deal_orders[(sort_by, descending)] = (self._deals_version, order)
        return order

    def _refuse_list_params(self, request: SandboxRequest) -> None:
        """Id filters must look like ids; a variant refuses the assumed filters or sorts."""
        for param, prefix in ID_PARAMS.items():
            for value in self._comma_param(request, param):
                if not value.startswith(prefix) or not ID_PATTERN.match(value):
                    raise self._url_error(param, f"must be an id starting {prefix}")
        refused = []
        if "filters_422" in self.variants:
            refused += [p for p in FILTER_PARAMS if request.param(p) is not None]
        if "sort_422" in self.variants:
            refused += [p for p in ("sort_by", "sort_direction") if request.param(p) is not None]
        if refused:
            raise self._url_error(refused[0], "is not a permitted parameter")

    def _list_deals(self, request: SandboxRequest) -> dict[str, Any]:
        expand = self._expand(request)
        self._refuse_list_params(request)
        rows = self._deals_in_order(request)
        statuses = self._comma_param(request, "status")
        if statuses:
            unknown = statuses - set(DEAL_STATUSES)
            if unknown:
                raise self._url_error("status", f"must be among: {', '.join(DEAL_STATUSES)}")
            rows = [d for d in rows if d.get("status") in statuses]
        stage_ids = self._comma_param(request, "stage_id")
        if stage_ids:
            rows = [d for d in rows if self._rel_id(d, "stage") in stage_ids]
        single_filters = {"assignee_id": "assignee", "contact_id": "contact", "site_id": "site"}
        for param, relation in single_filters.items():
            wanted = request.param(param)
            if wanted:
                rows = [d for d in rows if self._rel_id(d, relation) == wanted]
        search = (request.param("search") or "").casefold()
        if search:
            rows = [d for d in rows if search in str(d.get("name") or "").casefold()]
        return self._list(
            request,
            "deals",
            self.deals,
            DEAL_SORT_FIELDS,
            rows=rows,
            present=lambda deal: self._present(deal, expand, show=False),
            presorted=True,
        )

    @staticmethod
    def _comma_param(request: SandboxRequest, name: str) -> set[str]:
        return {part.strip() for part in (request.param(name) or "").split(",")} - {""}

    @staticmethod
    def _rel_id(deal: dict[str, Any], relation: str) -> Any:
        value = deal.get(relation)
        return value.get("id") if isinstance(value, dict) else None

    def _present(self, deal: dict[str, Any], expand: set[str], *, show: bool = True):
        """The deal as the API shows it: relations as ``{id}`` or, when expanded, in full."""
        body = copy.deepcopy(deal)
        if not show:
            for key in SHOW_ONLY_DEAL_FIELDS:
                body.pop(key, None)
        tables = {
            "assignee": self.staff,
            "creator": self.staff,  # an ``app_`` creator has no documented expanded shape
            "contact": self.contacts,
            "site": self.sites,
            "stage": self.stages,
        }
        for relation in expand:
            related_id = self._rel_id(body, relation)
            if isinstance(related_id, str) and related_id in tables[relation]:
                body[relation] = copy.deepcopy(tables[relation][related_id])
        return body

    def _body(self, request: SandboxRequest) -> dict[str, Any]:
        try:
            body = request.json()
        except (BadJson, RecursionError):
            raise StoraError(400, "invalid_request") from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise StoraError(400, "invalid_request", "The request body must be a JSON object.")
        return body

    def _reference(
        self,
        value: Any,
        pointer: str,
        table: dict[str, dict[str, Any]],
        errors: list[dict[str, str]],
        *,
        nullable: bool,
    ) -> dict[str, str] | None:
        if value is None and nullable:
            return None
        if not isinstance(value, dict):
            errors.append(_detail(pointer, "is not an object" + (" or null" if nullable else "")))
            return None
        related_id = value.get("id")
        if not isinstance(related_id, str):
            errors.append(_detail(pointer + "/id", "is not a string"))
        elif related_id not in table:
            errors.append(_detail(pointer + "/id", "does not match an existing record"))
        else:
            return {"id": related_id}
        return None

    def _validate_patch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Every problem of a PATCH body at once, or the changes to apply (S-A4, S-A5)."""
        errors: list[dict[str, str]] = []
        changes: dict[str, Any] = {}
        for field, value in body.items():
            pointer = _pointer(field)
            if field == "name":
                if not isinstance(value, str):
                    errors.append(_detail(pointer, "is not a string"))
                elif not value.strip():
                    errors.append(_detail(pointer, "must not be empty"))
                else:
                    changes["name"] = value.strip()
            elif field in ("assignee", "site"):
                table = self.staff if field == "assignee" else self.sites
                changes[field] = self._reference(value, pointer, table, errors, nullable=True)
            elif field == "stage":
                changes[field] = self._reference(
                    value, pointer, self.stages, errors, nullable=False
                )
            elif field == "note":
                if value is not None and not isinstance(value, str):
                    errors.append(_detail(pointer, "is not a string or null"))
                changes["note"] = value
            elif field == "starts_at":
                if value is None:
                    changes["starts_at"] = None
                elif not isinstance(value, str) or not _parse_datetime(value):
                    errors.append(_detail(pointer, "does not match format: date-time"))
                else:
                    changes["starts_at"] = _parse_datetime(value)
            elif field == "metadata":
                if not isinstance(value, dict):
                    errors.append(_detail(pointer, "is not an object"))
                changes["metadata"] = value
            elif field == "line_items":
                changes["line_items"] = self._validate_line_items(value, errors)
            else:
                errors.append(_detail(pointer, "is not a permitted property"))
        if errors:
            raise StoraError(422, "invalid_content", details=errors)
        return changes

    def _validate_line_items(self, value: Any, errors: list[dict[str, str]]) -> list[Any]:
        if not isinstance(value, list):
            errors.append(_detail("/line_items", "is not an array"))
            return []
        catalogues = {"unit_type": self.unit_types, "protection": self.protection_levels}
        items, seen_types = [], set()
        for index, line in enumerate(value):
            pointer = _pointer("line_items", index)
            if not isinstance(line, dict):
                errors.append(_detail(pointer, "is not an object"))
                continue
            line_type = line.get("type")
            if line_type not in catalogues:
                errors.append(_detail(pointer + "/type", "is not one of: unit_type, protection"))
                continue
            if line_type in seen_types:
                errors.append(_detail(pointer + "/type", "must appear at most once"))
                continue
            seen_types.add(line_type)
            item = self._reference(
                line.get("item"), pointer + "/item", catalogues[line_type], errors, nullable=False
            )
            quantity = line.get("quantity", 1)
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                errors.append(_detail(pointer + "/quantity", "must be an integer of at least 1"))
            if item:
                items.append({"item": item, "quantity": quantity, "type": line_type})
        return items

    def _update_deal(self, request: SandboxRequest, deal_id: str) -> dict[str, Any]:
        deal = self._find(self.deals, deal_id, "deal_")
        expand = self._expand(request)
        changes = self._validate_patch(self._body(request))
        if "stage" in changes and deal.get("status") != "open":
            raise StoraError(  # S-A5
                409, "conflict", "The deal is not open: reopen it to move it to another stage."
            )
        if changes:
            deal.update(changes)
            self._touch(deal)
            self._emit(deal, "deal.updated")
        return {"deal": self._present(deal, expand)}

    def _transition(self, request: SandboxRequest, deal_id: str, action: str) -> dict[str, Any]:
        deal = self._find(self.deals, deal_id, "deal_")
        expand = self._expand(request)
        body = self._body(request)
        errors: list[dict[str, str]] = []
        changes: dict[str, Any] = {}
        if action == "win":
            changes = {"status": "won"}
        elif action == "lose":
            reason = body.get("lost_reason")
            if "lost_reason" not in body:
                errors.append(_detail("/lost_reason", "is required"))
            elif reason not in LOST_REASONS:  # S-A7
                errors.append(_detail("/lost_reason", "is not one of the allowed values"))
            changes = {"status": "lost", "lost_reason": reason}
        else:
            changes = {"status": "open", "lost_reason": None}  # S-A8
            for field, table in (("stage", self.stages), ("assignee", self.staff)):
                if body.get(field) is not None:
                    changes[field] = self._reference(
                        body[field], _pointer(field), table, errors, nullable=False
                    )
            for field in sorted(body.keys() - {"stage", "assignee"}):
                errors.append(_detail(_pointer(field), "is not a permitted property"))
            if "stage" not in changes and self.stages:  # S-A8: first stage by position
                first = min(self.stages.values(), key=lambda s: s.get("position") or 0)
                changes["stage"] = {"id": first["id"]}
        if errors:
            raise StoraError(422, "invalid_content", details=errors)
        is_open = deal.get("status") == "open"
        if (action == "reopen") == is_open:  # S-A6
            state = "already open" if is_open else f"not open (it is {deal.get('status')})"
            raise StoraError(409, "conflict", f"The deal cannot be {PAST_TENSE[action]}: {state}.")
        deal.update(changes)
        self._touch(deal)
        self._emit(deal, "deal.lost" if action == "lose" else "deal.updated")
        return {"deal": self._present(deal, expand, show=False)}

    def _create_deal(self, request: SandboxRequest) -> dict[str, Any]:
        """S-A13: ``name`` and ``contact`` required, ``stage`` defaults to the first by position,
        ``line_items`` optional; the other PATCH fields are accepted too."""
        expand = self._expand(request)
        body = self._body(request)
        errors: list[dict[str, str]] = []
        contact = None
        if "name" not in body:
            errors.append(_detail("/name", "is required"))
        if "contact" not in body:
            errors.append(_detail("/contact", "is required"))
        else:
            contact = self._reference(
                body["contact"], "/contact", self.contacts, errors, nullable=False
            )
        try:
            changes = self._validate_patch({k: v for k, v in body.items() if k != "contact"})
        except StoraError as error:
            errors = [*errors, *error.details]
            changes = {}
        if errors:
            raise StoraError(422, "invalid_content", details=errors)
        if changes.get("stage") is None and self.stages:
            first = min(self.stages.values(), key=lambda s: s.get("position") or 0)
            changes["stage"] = {"id": first["id"]}
        deal = {
            "id": "deal_" + uuid.uuid4().hex[:16],
            "assignee": None,
            "contact": contact,
            "creator": {"id": API_APPLICATION_ID},
            "line_items": [],
            "lost_reason": None,
            "metadata": {},
            "name": "",
            "note": None,
            "site": None,
            "stage": None,
            "starts_at": None,
            "status": "open",
            "value_estimate": None,
            **changes,
        }
        self._touch(deal)
        deal["created_at"] = deal["updated_at"]
        self.deals[deal["id"]] = deal
        self._emit(deal, "deal.updated")  # S-A12: no creation event type is documented
        return {"deal": self._present(deal, expand)}

    # --- webhook endpoints (§15) ------------------------------------------------------------

    @staticmethod
    def _present_endpoint(endpoint: dict[str, Any]) -> dict[str, Any]:
        """The secret is shown once, when the endpoint is created."""
        return {k: copy.deepcopy(v) for k, v in endpoint.items() if k != "secret"}

    def _create_webhook_endpoint(self, request: SandboxRequest) -> dict[str, Any]:
        body = self._body(request)
        errors: list[dict[str, str]] = []
        url = body.get("url")
        if not isinstance(url, str) or not _is_webhook_url(url):
            errors.append(_detail("/url", "must be a URL starting with https://"))
        event_types = body.get("event_types", list(WEBHOOK_EVENT_TYPES))
        if (
            not isinstance(event_types, list)
            or not event_types
            or any(t not in WEBHOOK_EVENT_TYPES for t in event_types)
        ):
            errors.append(
                _detail("/event_types", f"must be a list of: {', '.join(WEBHOOK_EVENT_TYPES)}")
            )
        if body.get("api_version", VERSION) != VERSION:
            errors.append(_detail("/api_version", f"must be {VERSION}"))
        for field in ("name", "description"):
            if body.get(field) is not None and not isinstance(body[field], str):
                errors.append(_detail(_pointer(field), "is not a string"))
        if not isinstance(body.get("metadata", {}), dict):
            errors.append(_detail("/metadata", "is not an object"))
        known = {"name", "api_version", "url", "event_types", "description", "metadata"}
        for field in sorted(body.keys() - known):
            errors.append(_detail(_pointer(field), "is not a permitted property"))
        if errors:
            raise StoraError(422, "invalid_content", details=errors)
        endpoint = self.register_webhook(
            url, event_types=list(dict.fromkeys(event_types)), name=body.get("name") or ""
        )
        self.webhook_endpoints[endpoint["id"]].update(
            description=body.get("description"), metadata=copy.deepcopy(body.get("metadata", {}))
        )
        return {"webhook_endpoint": copy.deepcopy(self.webhook_endpoints[endpoint["id"]])}


def _is_webhook_url(url: str) -> bool:
    """``https://`` as Stora requires, or ``http://`` to loopback (a sandbox-only relaxation)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.hostname or any(c.isspace() for c in url):
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
