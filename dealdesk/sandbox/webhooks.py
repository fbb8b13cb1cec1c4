"""Stora's webhook deliveries, as the sandbox sends them (``../shared/api/stora.md`` §15).

The Stora simulator hands each deal change to ``WebhookSender.enqueue`` while it holds its lock;
that only queues the already-serialised event. A scheduler thread and a small pool send the POSTs
later, so a delivery never runs under the simulator's lock and never delays the API response.

Each delivery is one event to one endpoint:

- ``POST`` with ``Content-Type: application/json``, ``User-Agent: Stora-Webhooks/1.0``, a fresh
  ``X-Stora-Request-Id`` per attempt and ``X-Stora-Signature: t={unix},v1={hex}``, the HMAC-SHA256
  of ``"{t}.{raw body}"`` with the endpoint's secret (signed again for every attempt).
- A 2xx answer delivers it. Anything else (another status, a refused connection, a timeout after
  ``CONNECT_TIMEOUT``/``READ_TIMEOUT`` seconds) is retried like Stora retries (up to 6 times),
  but fast: after ``RETRY_DELAYS`` seconds times ``retry_scale``.
- Faults for tests apply to the next N deliveries (``add_fault``): ``drop`` (never sent),
  ``delay`` (first attempt ``seconds`` late), ``duplicate`` (each attempt sent twice, same event),
  ``bad_signature`` (signed with another secret), ``bad_body`` (body changed after signing),
  ``malformed_json`` (a truncated body, correctly signed) and ``stale_timestamp`` (signed with a
  ``t`` ten minutes old, S-A11). A faulted delivery keeps its fault on every retry.

``deliveries()`` lists every attempt (and every dropped delivery) for tests; ``reset()`` forgets
pending retries, faults and the list.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

USER_AGENT = "Stora-Webhooks/1.0"
RETRY_DELAYS = (0.2, 1.0, 5.0, 15.0, 30.0, 60.0)  # before retry 1..6; Stora: 1 min, 5 min, 30 min…
CONNECT_TIMEOUT, READ_TIMEOUT = 2.0, 5.0
STALE_SECONDS = 600  # older than S-A11's 5-minute tolerance
FAULT_KINDS = (
    "drop",
    "delay",
    "duplicate",
    "bad_signature",
    "bad_body",
    "malformed_json",
    "stale_timestamp",
)
DELIVERY_LOG_LIMIT = 10_000
SENDER_THREADS = 4


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Stora-Signature`` for ``body`` sent at ``timestamp`` (stora.md §15)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Delivery:
    """One event on its way to one endpoint."""

    event_id: str
    event_type: str
    deal_id: str
    endpoint_id: str
    url: str
    secret: str
    body: bytes
    generation: int
    faults: dict[str, float] = field(default_factory=dict)  # kind -> seconds (delay) or 0
    attempt: int = 0


class WebhookSender:
    """Queues, signs, sends and retries deliveries on background threads. Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []  # a heap by due time
        self._order = itertools.count()
        self._in_flight = 0
        self._generation = 0
        self._faults: dict[str, tuple[int, float]] = {}  # kind -> (deliveries left, seconds)
        self._log: list[dict[str, Any]] = []
        self._scheduler: threading.Thread | None = None
        self._due: queue.SimpleQueue[Delivery] = queue.SimpleQueue()  # for the sender threads
        self.retry_scale = 1.0

    # --- control ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget queued deliveries and retries, faults and the delivery list."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._faults.clear()
            self._log.clear()
            self.retry_scale = 1.0
            self._cond.notify_all()

    def add_fault(self, kind: str, count: int = 1, *, seconds: float = 0.0) -> None:
        """Apply ``kind`` to each of the next ``count`` deliveries (0 clears it)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        with self._cond:
            if count <= 0:
                self._faults.pop(kind, None)
            else:
                self._faults[kind] = (int(count), float(seconds))

    def faults(self) -> dict[str, dict[str, float]]:
        with self._cond:
            return {k: {"count": n, "seconds": s} for k, (n, s) in self._faults.items()}

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(entry) for entry in self._log]

    def clear_deliveries(self) -> None:
        with self._cond:
            self._log.clear()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def wait(self, *, attempts: int | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until the list holds ``attempts`` entries or, without ``attempts``, until nothing
        is queued or in flight; returns the list either way (the caller checks it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = (
                    len(self._log) >= attempts
                    if attempts is not None
                    else not self._queue and not self._in_flight
                )
                left = deadline - time.monotonic()
                if done or left <= 0:
                    return [dict(entry) for entry in self._log]
                self._cond.wait(min(left, 0.05))

    # --- sending ----------------------------------------------------------------------------

    def enqueue(
        self, event: dict[str, Any], targets: list[tuple[str, str, str]], deal_id: str
    ) -> None:
        """Queue ``event`` for each ``(endpoint_id, url, secret)``; never blocks on the network."""
        body = json.dumps(event, ensure_ascii=False).encode()
        inner = event["event"]
        with self._cond:
            for endpoint_id, url, secret in targets:
                delivery = Delivery(
                    event_id=inner["id"],
                    event_type=inner["type"],
                    deal_id=deal_id,
                    endpoint_id=endpoint_id,
                    url=url,
                    secret=secret,
                    body=body,
                    generation=self._generation,
                    faults=self._take_faults(),
                )
                if "drop" in delivery.faults:
                    self._record(delivery, outcome="dropped")
                    continue
                self._schedule(delivery, delivery.faults.get("delay", 0.0))
            self._ensure_threads()
            self._cond.notify_all()

    def _take_faults(self) -> dict[str, float]:
        taken = {}
        for kind, (left, seconds) in list(self._faults.items()):
            taken[kind] = seconds
            if left > 1:
                self._faults[kind] = (left - 1, seconds)
            else:
                del self._faults[kind]
        return taken

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), delivery))

    def _ensure_threads(self) -> None:
        """Daemon threads, started on the first delivery: they never hold up the exit."""
        if self._scheduler is None:
            for number in range(SENDER_THREADS):
                threading.Thread(
                    target=self._send_due, name=f"stora-webhook-{number}", daemon=True
                ).start()
            self._scheduler = threading.Thread(
                target=self._run, name="stora-webhook-scheduler", daemon=True
            )
            self._scheduler.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                _, _, delivery = heapq.heappop(self._queue)
                self._in_flight += 1
            self._due.put(delivery)

    def _send_due(self) -> None:
        while True:
            self._attempt(self._due.get())

    def _attempt(self, delivery: Delivery) -> None:
        try:
            if delivery.generation != self._generation:
                return  # a reset came in between
            delivery.attempt += 1
            copies = 2 if "duplicate" in delivery.faults else 1
            delivered = False
            for _ in range(copies):
                delivered = self._send(delivery) or delivered
            with self._cond:
                retries_left = delivery.attempt <= len(RETRY_DELAYS)
                if not delivered and retries_left and delivery.generation == self._generation:
                    delay = RETRY_DELAYS[delivery.attempt - 1] * self.retry_scale
                    self._schedule(delivery, delay)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _send(self, delivery: Delivery) -> bool:
        """One POST; True on a 2xx answer."""
        timestamp = int(time.time())
        body = delivery.body
        secret = delivery.secret
        if "stale_timestamp" in delivery.faults:
            timestamp -= STALE_SECONDS
        if "bad_signature" in delivery.faults:
            secret = "whsec_not_the_endpoint_secret"
        if "malformed_json" in delivery.faults:
            body = body[: len(body) // 2]
        signature = signature_header(secret, timestamp, body)
        if "bad_body" in delivery.faults:
            body = body.replace(b'"event"', b'"evemt"', 1)  # tampered after signing
        request_id = "req_" + uuid.uuid4().hex
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Stora-Request-Id": request_id,
            "X-Stora-Signature": signature,
        }
        started = time.time()
        status, error = None, None
        try:
            status = _post(delivery.url, body, headers)
        except (OSError, http.client.HTTPException, ValueError) as problem:
            error = f"{type(problem).__name__}: {problem}"
        delivered = status is not None and 200 <= status < 300
        with self._cond:
            if delivery.generation == self._generation:
                self._record(
                    delivery,
                    outcome="delivered" if delivered else "failed",
                    status=status,
                    error=error,
                    request_id=request_id,
                    signature=signature,
                    body=body,
                    started=started,
                )
        return delivered

    def _record(self, delivery: Delivery, *, outcome: str, **details: Any) -> None:
        """Append one entry to the delivery list; the caller holds the lock."""
        body = details.pop("body", delivery.body)
        self._log.append(
            {
                "event_id": delivery.event_id,
                "event_type": delivery.event_type,
                "deal_id": delivery.deal_id,
                "endpoint_id": delivery.endpoint_id,
                "url": delivery.url,
                "attempt": delivery.attempt,
                "faults": sorted(delivery.faults),
                "outcome": outcome,
                "status": details.get("status"),
                "error": details.get("error"),
                "request_id": details.get("request_id"),
                "signature": details.get("signature"),
                "body": body.decode("utf-8", "replace"),
                "started": details.get("started", time.time()),
                "finished": time.time(),
            }
        )
        if len(self._log) > DELIVERY_LOG_LIMIT:
            del self._log[: len(self._log) - DELIVERY_LOG_LIMIT]
        self._cond.notify_all()


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST and return the status; the answer's body is read and ignored."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) url: {url!r}")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT)
    try:
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(READ_TIMEOUT)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(1024 * 1024)
        return response.status
    finally:
        connection.close()
