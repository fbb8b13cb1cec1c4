"""The one place that speaks HTTP to Stora and nodestash.

- a pooled ``requests.Session`` per connection, with an explicit (connect, read) timeout;
- retries only for GET, on 502/503/504 and connection errors, at most 2, bounded backoff;
- an ``Idempotency-Key`` on every POST (and on PATCH when the adapter asks for one);
- a client-side rate budget per API key, shared through Django's cache so every worker
  process spends one budget; when it is spent the caller gets ``RateLimited`` at once;
- the upstream request id kept on every response and error; the API key is never logged;
- a body that cannot be parsed (not UTF-8, not JSON, nested past the recursion limit, numbers
  too large) is "a response DealDesk could not read", never an exception of its own;
- the outgoing headers are sensitive variables: no error report, even with DEBUG on, shows the
  bearer token (see ``dealdesk.logging.SafeExceptionReporterFilter``).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json as jsonlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

import requests
from django.conf import settings
from django.core.cache import cache
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dealdesk.providers.base import ConnectionInfo, ProviderError, RateLimited, Unavailable

logger = logging.getLogger("dealdesk.upstream")

USER_AGENT = "DealDesk/0.1 (+https://github.com/dealdesk; python-requests)"
GET_RETRIES = 2
RETRY_BACKOFF = 0.25  # urllib3 waits 0.25 s then 0.5 s: under a second in total
RETRY_STATUSES = (502, 503, 504)


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: Mapping[str, str]
    request_id: str = ""


ErrorMapper = Callable[[int, Any, Mapping[str, str], str], ProviderError]


# --- Sessions ---------------------------------------------------------------------------------

_sessions: dict[tuple[str, str], requests.Session] = {}
_sessions_lock = threading.Lock()


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible handle for an API key (cache keys, session pool keys)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def _new_session() -> requests.Session:
    retry = Retry(
        total=GET_RETRIES,
        connect=GET_RETRIES,
        read=False,  # a slow upstream is not retried (and stays a Timeout, not a ConnectionError)
        status=GET_RETRIES,
        other=0,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=RETRY_BACKOFF,
        backoff_max=1.0,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = False  # never route API keys through a proxy named by the environment
    return session


def session_for(connection: ConnectionInfo) -> requests.Session:
    pool_key = (connection.base_url, key_fingerprint(connection.api_key))
    with _sessions_lock:
        session = _sessions.get(pool_key)
        if session is None:
            session = _sessions[pool_key] = _new_session()
        return session


# --- Rate budget ------------------------------------------------------------------------------


# The share of every window that page views leave free for writes, so that when many people
# browse at once a sales rep's Save still gets through (a refused read can simply be retried).
# The reserve always holds at least one Save: its conflict re-read and its PATCH or POST.
WRITE_RESERVE = 0.2
SAVE_CALLS = 2
# Background sync waits for budget instead of failing, but never longer than this per call.
SYNC_MAX_WAIT = 90.0
# ...and looks again at least this often: a sliding window frees room gradually, so sleeping
# until the end of the slot (``retry_after``) would leave every other slot empty and halve the
# sync's rate.
SYNC_RECHECK = 1.0

READ, WRITE, SYNC = "read", "write", "sync"
_priority: contextvars.ContextVar[str] = contextvars.ContextVar("dealdesk_priority", default=READ)


@contextmanager
def _with_priority(priority: str) -> Iterator[None]:
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


def write_priority() -> AbstractContextManager[None]:
    """Calls made inside (a write's conflict re-read as well as the write) spend the reserve."""
    return _with_priority(WRITE)


def sync_priority() -> AbstractContextManager[None]:
    """Calls made inside are background sync: they spend at most ``DEALDESK_SYNC_SHARE`` of
    each window and wait for room instead of failing."""
    return _with_priority(SYNC)


@dataclass
class CallTally:
    calls: int = 0


_tally: contextvars.ContextVar[CallTally | None] = contextvars.ContextVar(
    "dealdesk_call_tally", default=None
)


@contextmanager
def counting_calls() -> Iterator[CallTally]:
    """Counts the upstream requests sent inside (what a sync run cost)."""
    tally = CallTally()
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)


def read_ceiling(allowed: int) -> int:
    """How many of a window's ``allowed`` requests reads may take (never none)."""
    reserve = min(allowed - 1, max(SAVE_CALLS, int(allowed * WRITE_RESERVE)))
    return allowed - max(0, reserve)


def sync_ceiling(allowed: int) -> int:
    """How many of a window's ``allowed`` requests background sync may take (never none, and
    never more than reads may)."""
    share = int(allowed * settings.DEALDESK_SYNC_SHARE)
    return max(1, min(read_ceiling(allowed), share))


def _ceiling(allowed: int, priority: str) -> int:
    if priority == WRITE:
        return allowed
    if priority == SYNC:
        return sync_ceiling(allowed)
    return read_ceiling(allowed)


class _Slot(NamedTuple):
    """The current fixed slot of one rate window, and the previous slot it slides over."""

    key: str
    previous_key: str
    window: int
    overlap: float  # the share of the previous slot still inside the sliding window
    ceiling: int
    retry_after: float

    def carried(self, counts: dict[str, int]) -> float:
        return counts.get(self.previous_key, 0) * self.overlap


@dataclass
class RateBudget:
    """Sliding-window counters in Django's cache, one set per API key.

    ``limits`` is a list of (requests, window seconds). Each window is counted in fixed slots; a
    request is allowed when the current slot's count plus the previous slot's, weighted by how
    much of it still overlaps the last ``window`` seconds, stays within the limit. That keeps
    under an upstream that counts over a sliding window, where plain fixed windows could send
    twice the limit across a slot boundary. Reads may use only ``read_ceiling`` of a window;
    writes may use all of it. A refused request is given back, so refusals never eat into what
    is left; the caller gets ``RateLimited`` at once and nothing waits.
    """

    scope: str
    limits: list[tuple[int, int]] = field(default_factory=list)

    def spend(self, *, connection_label: str = "", priority: str = READ) -> None:
        """Take one request from every window, or raise ``RateLimited``. Background sync
        (``SYNC``) waits for room instead, up to ``SYNC_MAX_WAIT`` seconds."""
        if priority != SYNC:
            self._spend_once(connection_label, priority)
            return
        deadline = time.monotonic() + SYNC_MAX_WAIT
        while True:
            try:
                self._spend_once(connection_label, priority)
                return
            except RateLimited as refused:
                wait = min(refused.retry_after or 1.0, SYNC_RECHECK, deadline - time.monotonic())
                if wait <= 0:
                    raise
                time.sleep(max(0.05, wait))

    def _spend_once(self, connection_label: str, priority: str) -> None:
        if not settings.DEALDESK_CLIENT_RATE_LIMITS:
            return
        now = time.time()
        slots = [self._slot(allowed, window, now, priority) for allowed, window in self.limits]
        counts = cache.get_many([key for slot in slots for key in (slot.key, slot.previous_key)])
        # Look before taking: under pressure most calls are refused, and a refusal that had
        # counted itself, even briefly, would crowd out a write arriving in between.
        for slot in slots:
            if counts.get(slot.key, 0) + 1 + slot.carried(counts) > slot.ceiling:
                self._refuse(slot.retry_after, connection_label)
        taken: list[str] = []
        for slot in slots:
            cache.add(slot.key, 0, timeout=2 * slot.window + 1)  # read again as the previous
            try:
                used = cache.incr(slot.key)
            except ValueError:  # expired between add and incr
                cache.add(slot.key, 1, timeout=2 * slot.window + 1)
                used = 1
            taken.append(slot.key)
            if used + slot.carried(counts) > slot.ceiling:
                # Another process took the last place meanwhile: give back what we took.
                for key in taken:
                    with contextlib.suppress(ValueError):
                        cache.decr(key)
                self._refuse(slot.retry_after, connection_label)

    def _slot(self, allowed: int, window: int, now: float, priority: str) -> _Slot:
        start = int(now // window) * window
        return _Slot(
            key=f"dealdesk:rate:{self.scope}:{window}:{start}",
            previous_key=f"dealdesk:rate:{self.scope}:{window}:{start - window}",
            window=window,
            overlap=1 - (now - start) / window,
            ceiling=_ceiling(allowed, priority),
            retry_after=start + window - now,
        )

    @staticmethod
    def _refuse(retry_after: float, connection_label: str) -> NoReturn:
        raise RateLimited(
            f"DealDesk paused calls to {connection_label or 'this API'} to stay "
            f"under its rate limit. Try again in {max(1, round(retry_after))} s.",
            retry_after=retry_after,
            connection_label=connection_label,
            code="client_rate_budget",
        )


# --- Parsing ----------------------------------------------------------------------------------


class UnreadableBody(ValueError):
    """An upstream body that is not JSON DealDesk can use."""


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise UnreadableBody(f"number out of range: {text[:20]}")
    return number


def _refuse_constant(name: str) -> NoReturn:
    raise UnreadableBody(f"{name} is not JSON")


def parse_json_body(content: bytes) -> Any:
    """The JSON value of a response body (``None`` when empty); raises ``UnreadableBody``.

    JSON is UTF-8 (RFC 8259), decoded strictly; NaN, Infinity and floats beyond range are refused,
    as are integers past Python's digit limit and nesting past the recursion limit.
    """
    if not content:
        return None
    try:
        return jsonlib.loads(
            content.decode("utf-8"), parse_float=_finite_float, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise UnreadableBody(type(error).__name__) from None


# --- Transport --------------------------------------------------------------------------------


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


class ApiTransport:
    """Sends one request and returns a parsed ``ApiResponse`` or raises a ``ProviderError``."""

    def __init__(
        self,
        connection: ConnectionInfo,
        *,
        error_mapper: ErrorMapper,
        budget: RateBudget,
        extra_headers: Mapping[str, str] | None = None,
        before_request: Callable[[], None] | None = None,
        on_headers: Callable[[Mapping[str, str]], None] | None = None,
    ) -> None:
        self.connection = connection
        self.error_mapper = error_mapper
        self.budget = budget
        self.extra_headers = dict(extra_headers or {})
        # A vendor's own quota: ``before_request`` may refuse a call (``RateLimited``) before
        # anything is sent; ``on_headers`` sees the headers of every answer, error or not.
        self.before_request = before_request
        self.on_headers = on_headers
        self.last_request_id = ""  # of the latest response, success or error (audit trail)

    @property
    def timeout(self) -> tuple[float, float]:
        return (settings.DEALDESK_HTTP_CONNECT_TIMEOUT, settings.DEALDESK_HTTP_READ_TIMEOUT)

    @sensitive_variables()  # the headers hold the bearer token, also in the frames below
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> ApiResponse:
        label = self.connection.label
        self.last_request_id = ""
        if self.before_request is not None:
            self.before_request()
        priority = _priority.get()
        if method != "GET" and priority == READ:
            priority = WRITE
        self.budget.spend(connection_label=label, priority=priority)
        tally = _tally.get()
        if tally is not None:
            tally.calls += 1
        headers = {
            "Authorization": f"Bearer {self.connection.api_key}",
            "Accept": "application/json",
            **self.extra_headers,
        }
        if json is not None:
            headers["Content-Type"] = "application/json"
        if method == "POST" and not idempotency_key:
            idempotency_key = new_idempotency_key()
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        url = self.connection.base_url.rstrip("/") + path
        started = time.monotonic()
        try:
            response = session_for(self.connection).request(
                method, url, params=params, json=json, headers=headers, timeout=self.timeout
            )
        except requests.Timeout:
            self._log(method, path, "timeout", started)
            raise Unavailable(
                f"{label} did not answer in time.", connection_label=label, code="timeout"
            ) from None
        except requests.RequestException as exc:
            self._log(method, path, type(exc).__name__, started)
            raise Unavailable(
                f"{label} cannot be reached.", connection_label=label, code="unreachable"
            ) from None
        if self.on_headers is not None:
            self.on_headers(response.headers)
        request_id = response.headers.get("X-Request-Id", "")
        try:
            body = parse_json_body(response.content)
        except UnreadableBody:
            body = None
            if response.ok:
                self._log(method, path, response.status_code, started, request_id)
                raise Unavailable(
                    f"{label} sent a response DealDesk could not read.",
                    connection_label=label,
                    status=response.status_code,
                    code="malformed_response",
                    request_id=request_id,
                ) from None
        if not request_id and isinstance(body, dict):
            meta = body.get("meta")
            if isinstance(meta, dict):
                request_id = str(meta.get("request_id") or "")
            if not request_id and isinstance(body.get("error"), dict):
                request_id = str(body["error"].get("request_id") or "")
        self._log(method, path, response.status_code, started, request_id)
        self.last_request_id = request_id
        if response.ok:
            return ApiResponse(response.status_code, body, response.headers, request_id)
        error = self.error_mapper(response.status_code, body, response.headers, request_id)
        error.connection_label = error.connection_label or label
        error.status = error.status or response.status_code
        error.request_id = error.request_id or request_id
        raise error

    def _log(
        self, method: str, path: str, outcome: str | int, started: float, request_id: str = ""
    ) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info(
            "%s %s %s -> %s in %.0f ms request_id=%s",
            self.connection.slug,
            method,
            path,
            outcome,
            elapsed_ms,
            request_id or "-",
        )
