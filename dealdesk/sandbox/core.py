"""The sandbox's HTTP server, request log and fault injection, shared by both simulators.

One loopback server hosts both simulators under a path prefix each:
``http://127.0.0.1:N/stora/2025-09/...`` and ``http://127.0.0.1:N/nodestash/v1/...``.
Faults and the request log are driven from Python (``Sandbox`` methods) or over HTTP under
``/__sandbox/`` (see ``dealdesk/sandbox/control.py``).
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from dealdesk.sandbox.sync_controls import SyncControls

MAX_BODY_BYTES = 1024 * 1024  # larger request bodies get a 413; no real request comes close
_DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES  # read and discard this much so the 413 reaches the client
LOG_LIMIT = 50_000  # the request log drops its oldest entries beyond this (long benchmarks)
# Framing is the server's job: a simulator or an injected fault never sets these.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


class BadJson(Exception):
    """The request body is not valid JSON."""


@dataclass
class SandboxRequest:
    method: str
    path: str  # inside the simulator, e.g. "/2025-09/deals/deal_x" or "/deals/dl_x"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            raise BadJson(str(error) or type(error).__name__) from None

    @property
    def bearer_token(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else None


@dataclass
class SandboxResponse:
    status: int
    body: Any = None  # JSON-serialisable, or bytes/str sent verbatim
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class Simulator(Protocol):
    """One vendor's API. ``handle`` is called under the simulator's lock."""

    name: str  # URL prefix: "stora" | "nodestash"
    token: str
    rate_limiting: bool

    def handle(self, request: SandboxRequest) -> SandboxResponse: ...

    def reset(self, seed: str) -> None: ...

    def mutate_deal(self, deal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a deal as another user would (bumps ``updated_at``); returns the raw deal."""

    def delete_deal(self, deal_id: str) -> None:
        """Remove a deal for good; ``KeyError`` when there is none."""


@dataclass
class Faults:
    latency_ms: int = 0
    fail_next: list[SandboxResponse] = field(default_factory=list)
    outage: bool = False
    # Each fault hits only requests of this method when set ("PATCH": a write fails after the
    # GET that precedes it succeeded); None hits every request.
    latency_method: str | None = None
    fail_method: str | None = None
    outage_method: str | None = None

    def applies(self, fault_method: str | None, method: str) -> bool:
        return fault_method is None or fault_method == method.upper()


@dataclass
class RecordedRequest:
    provider: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    started: float
    finished: float = 0.0
    status: int = 0


class Sandbox(SyncControls):
    """Both simulators, their faults and the request log. Thread-safe. Plans, deletions and
    webhooks: ``SyncControls`` (``dealdesk/sandbox/sync_controls.py``)."""

    def __init__(self, simulators: list[Simulator], *, seed: str = "demo") -> None:
        self.simulators = {sim.name: sim for sim in simulators}
        self.locks = {name: threading.Lock() for name in self.simulators}
        self.faults = {name: Faults() for name in self.simulators}
        self.log: list[RecordedRequest] = []
        self.log_lock = threading.Lock()
        self.seed = seed
        self.reset(seed)

    # --- control (also reachable over HTTP) ---------------------------------------------------

    def reset(self, seed: str | None = None) -> None:
        """Back to the seed data, with no faults, rate limiting on and an empty log."""
        self.seed = seed or self.seed
        for name, sim in self.simulators.items():
            with self.locks[name]:
                sim.reset(self.seed)
                sim.rate_limiting = True
            self.faults[name] = Faults()
        self.clear_log()

    def set_latency(self, provider: str, ms: int, *, method: str | None = None) -> None:
        for name in self._names(provider):
            self.faults[name].latency_ms = max(0, int(ms))
            self.faults[name].latency_method = method.upper() if method else None

    def fail_next(
        self,
        provider: str,
        count: int,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        method: str | None = None,
    ) -> None:
        for name in self._names(provider):
            self.faults[name].fail_next = [
                SandboxResponse(status, body, dict(headers or {})) for _ in range(int(count))
            ]
            self.faults[name].fail_method = method.upper() if method else None

    def set_outage(self, provider: str, enabled: bool, *, method: str | None = None) -> None:
        for name in self._names(provider):
            self.faults[name].outage = bool(enabled)
            self.faults[name].outage_method = method.upper() if method else None

    def set_variants(self, provider: str, variants) -> None:
        """Make a simulator answer an ASSUMED read the other documented way (each simulator's
        ``VARIANTS``, e.g. Stora's ``staff_404``); an empty list is the assumed behaviour.
        Until the next reset."""
        names = self._names(provider)
        wanted = set(variants)
        for name in names:
            unknown = wanted - set(getattr(self.simulators[name], "VARIANTS", ()))
            if unknown:
                raise ValueError(f"{name} has no variant {', '.join(sorted(unknown))}")
        for name in names:
            with self.locks[name]:
                self.simulators[name].variants = set(wanted)

    def set_rate_limiting(self, provider: str, enabled: bool) -> None:
        for name in self._names(provider):
            with self.locks[name]:
                self.simulators[name].rate_limiting = bool(enabled)

    def mutate_deal(self, provider: str, deal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self.locks[provider]:
            return self.simulators[provider].mutate_deal(deal_id, changes)

    def requests(self, provider: str | None = None) -> list[RecordedRequest]:
        with self.log_lock:
            return [r for r in self.log if provider in (None, r.provider)]

    def clear_log(self) -> None:
        with self.log_lock:
            self.log.clear()

    def _names(self, provider: str) -> list[str]:
        if provider in ("", "all", "*"):
            return list(self.simulators)
        if provider not in self.simulators:
            raise KeyError(provider)
        return [provider]

    # --- dispatch -------------------------------------------------------------------------------

    def dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> SandboxResponse | None:
        """Answer one request; ``None`` means drop the connection (an outage)."""
        parts = urlsplit(raw_path)
        path = parts.path
        if path.startswith("/__sandbox/") or path == "/__sandbox":
            from dealdesk.sandbox.control import handle_control

            lowered = {name.lower(): value for name, value in headers.items()}
            return handle_control(self, method, path, parse_qs(parts.query), body, lowered)
        prefix, _, rest = path.lstrip("/").partition("/")
        sim = self.simulators.get(prefix)
        if sim is None:
            return SandboxResponse(404, {"error": {"code": "invalid_endpoint"}})
        request = SandboxRequest(
            method=method,
            path="/" + rest,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
        )
        try:
            logged_body = request.json()
        except BadJson:
            logged_body = body.decode("utf-8", "replace")
        record = RecordedRequest(
            prefix, method, request.path, request.query, request.headers, logged_body, time.time()
        )
        with self.log_lock:
            self.log.append(record)
            if len(self.log) > LOG_LIMIT:
                del self.log[: len(self.log) - LOG_LIMIT]
        faults = self.faults[prefix]
        if faults.outage and faults.applies(faults.outage_method, method):
            record.finished = time.time()
            return None
        if faults.latency_ms and faults.applies(faults.latency_method, method):
            time.sleep(faults.latency_ms / 1000)
        with self.locks[prefix]:
            if faults.fail_next and faults.applies(faults.fail_method, method):
                response = faults.fail_next.pop(0)
            else:
                try:
                    response = sim.handle(request)
                except Exception as error:  # the sandbox must never die on a request
                    response = SandboxResponse(
                        500, {"error": {"code": "sandbox_error", "message": repr(error)}}
                    )
        record.finished = time.time()
        record.status = response.status
        return response


def _is_sendable_header(name: str, value: str) -> bool:
    """False for framing headers and for anything that would break the response's syntax."""
    if name.lower() in _FRAMING_HEADERS or any(c in name + value for c in "\r\n\0"):
        return False
    try:
        f"{name}: {value}".encode("latin-1")
    except UnicodeEncodeError:
        return False
    return bool(name) and ":" not in name


class _Handler(BaseHTTPRequestHandler):
    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK, ~40 ms on every keep-alive request.
    disable_nagle_algorithm = True

    # A client that stalls mid-request frees its thread eventually (http.server drops it).
    timeout = 120

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        try:
            response = self.server.sandbox.dispatch(
                self.command, self.path, dict(self.headers.items()), body
            )
            payload = response.encode() if response is not None else b""
        except Exception as error:  # the sandbox must never die on a request
            response = SandboxResponse(
                500, {"error": {"code": "sandbox_error", "message": repr(error)}}
            )
            payload = response.encode()
        if response is None:
            # Abort the connection with a reset, as a host that is down would.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self._send(response.status, payload, response.headers)

    def _read_body(self) -> bytes | None:
        """The request body, or ``None`` once an error has been answered for an unusable one."""
        if self.headers.get("Transfer-Encoding"):
            self._reject(411, "length_required", "send a Content-Length, not a chunked body")
            return None
        raw_length = (self.headers.get("Content-Length") or "0").strip()
        if not raw_length.isdigit() or not raw_length.isascii():
            self._reject(400, "bad_content_length", f"Content-Length {raw_length!r} is not valid")
            return None
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            if length <= _DRAIN_LIMIT_BYTES:
                self._discard(length)
            self._reject(413, "body_too_large", f"bodies are limited to {MAX_BODY_BYTES} bytes")
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client hung up mid-body: nobody is left to answer
            self.close_connection = True
            return None
        return body

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                return
            length -= len(chunk)

    def _reject(self, status: int, code: str, message: str) -> None:
        """Answer and close: the connection's framing can no longer be trusted."""
        self.close_connection = True
        payload = json.dumps({"error": {"code": code, "message": message}}).encode()
        self._send(status, payload, {"Connection": "close"})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            if _is_sendable_header(name, str(value)):
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the log is in memory
        pass


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up early (a timeout in DealDesk) is normal, not worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class SandboxServer:
    """Runs a ``Sandbox`` over real HTTP on loopback in a background thread."""

    def __init__(self, sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stora_url(self) -> str:
        return f"{self.url}/stora"

    @property
    def nodestash_url(self) -> str:
        return f"{self.url}/nodestash/v1"

    def start(self) -> SandboxServer:
        self._httpd = SandboxHTTPServer((self.host, self.port), self.sandbox)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: new connections are refused until ``start()`` binds the same port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def serve_forever(self) -> None:
        self._httpd = SandboxHTTPServer((self.host, self.port), self.sandbox)
        self.port = self._httpd.server_address[1]
        self._httpd.serve_forever()
