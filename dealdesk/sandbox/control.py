"""The sandbox's control API under ``/__sandbox/``: faults, reset, mutations and the request log.

Every endpoint speaks JSON and mirrors a ``Sandbox`` method, so a test or a benchmark in another
process (or ``curl``) can do over HTTP what a pytest test does from Python:

    GET    /__sandbox/                              seed, faults per provider, request counts
    POST   /__sandbox/reset         {"seed"?}       back to seed data, no faults, empty log
    POST   /__sandbox/latency       {"provider", "ms"}
    POST   /__sandbox/fail          {"provider", "count", "status", "body"?, "headers"?}
    POST   /__sandbox/rate-limit    {"provider", "enabled"}
    POST   /__sandbox/outage        {"provider", "enabled"}   requests are then reset, unanswered
    POST   /__sandbox/variants      {"provider", "variants": [...]}  ASSUMED reads the other way
    POST   /__sandbox/deals/<provider>/<deal_id>  {changes}  edit a deal as another user would
    GET    /__sandbox/requests?provider=            the recorded requests (no Authorization header)
    DELETE /__sandbox/requests                      clear the log

Plans, deleting deals and Stora webhooks: ``control_sync.py``.

``provider`` is ``stora``, ``nodestash`` or ``all``. Bad input gets a 400 naming the problem and
an unknown provider a 404; nothing here raises, and nothing is changed unless the whole request
is valid.

Only a loopback ``Host`` (127.0.0.1, localhost, [::1]) is answered, and a request carrying an
``Origin`` other than the sandbox's own is refused (403): a web page open in a developer's browser
can neither drive the sandbox cross-origin nor reach it through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import unquote, urlsplit

from dealdesk.sandbox.core import RecordedRequest, Sandbox, SandboxResponse

ALL_PROVIDERS = "all"
MAX_LATENCY_MS = 120_000
MAX_FAIL_COUNT = 10_000
SEED_PATTERN = re.compile(r"^(demo|large|contacts|\d{1,9})$")
# An HTTP token (RFC 9110); framing headers are the server's, so a fault may not set them.
HEADER_NAME_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
RESERVED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class ControlError(Exception):
    """A control request that cannot be carried out; becomes a JSON error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def handle_control(
    sandbox: Sandbox,
    method: str,
    path: str,
    query: dict[str, list[str]],
    body: bytes,
    headers: Mapping[str, str],
) -> SandboxResponse:
    """Answer one request under ``/__sandbox/``. Never raises. ``headers`` are lower-cased."""
    try:
        _check_caller(headers)
        return _route(sandbox, method.upper(), path, query, body)
    except ControlError as error:
        return _error(error.status, error.code, error.message)
    except Exception as error:  # the sandbox must never die on a request
        return _error(500, "sandbox_error", repr(error))


def _is_loopback_host(host: str) -> bool:
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:  # a malformed port or bracket
        return False
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_caller(headers: Mapping[str, str]) -> None:
    """Refuse a non-loopback Host (DNS rebinding) and a foreign Origin (a web page)."""
    host = headers.get("host", "").strip()
    if not _is_loopback_host(host):
        raise ControlError(
            403, "forbidden_host", "the sandbox's control API answers only a loopback Host"
        )
    origin = headers.get("origin")
    if origin is not None and origin.strip().lower() != f"http://{host.lower()}":
        raise ControlError(
            403, "forbidden_origin", "the sandbox's control API refuses requests from web pages"
        )


def _route(
    sandbox: Sandbox, method: str, path: str, query: dict[str, list[str]], body: bytes
) -> SandboxResponse:
    route = path.removeprefix("/__sandbox").strip("/")
    from dealdesk.sandbox.control_sync import route_sync  # it builds on this module's helpers

    sync_response = route_sync(sandbox, method, route, query, body)
    if sync_response is not None:
        return sync_response
    if route == "":
        _allow(method, "GET")
        return SandboxResponse(200, sandbox_status(sandbox))
    if route == "reset":
        _allow(method, "POST")
        return _reset(sandbox, _json_object(body))
    if route == "latency":
        _allow(method, "POST")
        return _latency(sandbox, _json_object(body))
    if route == "fail":
        _allow(method, "POST")
        return _fail(sandbox, _json_object(body))
    if route == "variants":
        _allow(method, "POST")
        return _variants(sandbox, _json_object(body))
    if route in ("rate-limit", "outage"):
        _allow(method, "POST")
        return _switch(sandbox, route, _json_object(body))
    if route == "requests":
        _allow(method, "GET", "DELETE")
        if method == "DELETE":
            sandbox.clear_log()
            return SandboxResponse(200, {"cleared": True})
        return _requests(sandbox, query)
    if route.startswith("deals/"):
        _allow(method, "POST")
        provider, _, deal_id = route.removeprefix("deals/").partition("/")
        return _mutate(sandbox, unquote(provider), unquote(deal_id), _json_object(body))
    raise ControlError(404, "unknown_endpoint", f"no control endpoint at {path!r}")


# --- endpoints ----------------------------------------------------------------------------------


def sandbox_status(sandbox: Sandbox) -> dict[str, Any]:
    """What ``GET /__sandbox/`` shows: the seed, each provider's faults and request count."""
    from dealdesk.sandbox.control_sync import provider_sync_status  # imports this module

    log = sandbox.requests()
    providers = {}
    for name, simulator in sandbox.simulators.items():
        faults = sandbox.faults[name]
        providers[name] = {
            "latency_ms": faults.latency_ms,
            "failing_next": len(faults.fail_next),
            "outage": faults.outage,
            "rate_limiting": simulator.rate_limiting,
            "variants": sorted(getattr(simulator, "variants", ())),
            "requests": sum(1 for record in log if record.provider == name),
            **provider_sync_status(sandbox, name),
        }
    return {"seed": sandbox.seed, "providers": providers, "requests": len(log)}


def _reset(sandbox: Sandbox, data: dict[str, Any]) -> SandboxResponse:
    _only_keys(data, "seed")
    seed = data.get("seed")
    if seed is not None:
        if isinstance(seed, int) and not isinstance(seed, bool):
            seed = str(seed)
        if not isinstance(seed, str) or not SEED_PATTERN.match(seed):
            raise ControlError(
                400, "bad_seed", 'seed must be "demo", "large", "contacts" or a number'
            )
    previous = sandbox.seed
    try:
        sandbox.reset(seed)
    except Exception as error:
        sandbox.reset(previous)  # never leave one simulator on the new seed and one on the old
        raise ControlError(400, "bad_seed", f"cannot reset to seed {seed!r}: {error}") from None
    return SandboxResponse(200, sandbox_status(sandbox))


def _latency(sandbox: Sandbox, data: dict[str, Any]) -> SandboxResponse:
    _only_keys(data, "provider", "ms")
    provider = _provider(sandbox, data)
    ms = _integer(data, "ms", minimum=0, maximum=MAX_LATENCY_MS)
    sandbox.set_latency(provider, ms)
    return SandboxResponse(200, sandbox_status(sandbox))


def _fail(sandbox: Sandbox, data: dict[str, Any]) -> SandboxResponse:
    _only_keys(data, "provider", "count", "status", "body", "headers")
    provider = _provider(sandbox, data)
    count = _integer(data, "count", minimum=0, maximum=MAX_FAIL_COUNT)
    # 1xx would leave a client waiting for a final response that never comes.
    status = _integer(data, "status", minimum=200, maximum=599)
    headers = _headers(data.get("headers"))
    # A JSON string is sent verbatim (malformed JSON, HTML error pages); anything else as JSON.
    sandbox.fail_next(provider, count, status, data.get("body"), headers)
    return SandboxResponse(200, sandbox_status(sandbox))


def _switch(sandbox: Sandbox, route: str, data: dict[str, Any]) -> SandboxResponse:
    _only_keys(data, "provider", "enabled")
    provider = _provider(sandbox, data)
    enabled = data.get("enabled")
    if not isinstance(enabled, bool):
        raise ControlError(400, "bad_enabled", '"enabled" must be true or false')
    if route == "outage":
        sandbox.set_outage(provider, enabled)
    else:
        sandbox.set_rate_limiting(provider, enabled)
    return SandboxResponse(200, sandbox_status(sandbox))


def _variants(sandbox: Sandbox, data: dict[str, Any]) -> SandboxResponse:
    _only_keys(data, "provider", "variants")
    provider = _provider(sandbox, data)
    variants = data.get("variants")
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        raise ControlError(400, "bad_variants", '"variants" must be a list of variant names')
    try:
        sandbox.set_variants(provider, variants)
    except ValueError as error:
        raise ControlError(400, "bad_variants", str(error)) from None
    return SandboxResponse(200, sandbox_status(sandbox))


def _mutate(
    sandbox: Sandbox, provider: str, deal_id: str, changes: dict[str, Any]
) -> SandboxResponse:
    if provider not in sandbox.simulators:
        raise ControlError(404, "unknown_provider", f"no provider {provider!r}")
    if not deal_id or "/" in deal_id:
        raise ControlError(404, "unknown_endpoint", "use /__sandbox/deals/<provider>/<deal_id>")
    if not changes:
        raise ControlError(400, "no_changes", "send a JSON object of the fields to change")
    if "id" in changes:  # the simulators key deals by id: a new one would orphan the deal
        raise ControlError(400, "bad_changes", "a deal's id cannot change")
    try:
        deal = sandbox.mutate_deal(provider, deal_id, changes)
    except KeyError as error:
        raise ControlError(404, "unknown_deal", f"{provider} has no deal {error}") from None
    except (ValueError, TypeError) as error:
        raise ControlError(400, "bad_changes", str(error)) from None
    return SandboxResponse(200, {"deal": deal})


def _requests(sandbox: Sandbox, query: dict[str, list[str]]) -> SandboxResponse:
    provider = (query.get("provider") or [""])[0]
    if provider and provider != ALL_PROVIDERS and provider not in sandbox.simulators:
        raise ControlError(404, "unknown_provider", f"no provider {provider!r}")
    records = sandbox.requests(None if provider in ("", ALL_PROVIDERS) else provider)
    return SandboxResponse(200, {"requests": [recorded_request_json(r) for r in records]})


def recorded_request_json(record: RecordedRequest) -> dict[str, Any]:
    """One log entry as JSON; the Authorization header (a secret) is left out."""
    data = asdict(record)
    data["headers"] = {k: v for k, v in record.headers.items() if k.lower() != "authorization"}
    data["duration_ms"] = (
        round((record.finished - record.started) * 1000, 1) if record.finished else None
    )
    return data


# --- input checks -------------------------------------------------------------------------------


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise ControlError(405, "method_not_allowed", f"use {' or '.join(allowed)}")


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ControlError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ControlError(400, "bad_json", "the body must be a JSON object")
    return data


def _only_keys(data: dict[str, Any], *known: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ControlError(
            400, "unknown_field", f"unknown field(s) {unknown}; expected {list(known)}"
        )


def _provider(sandbox: Sandbox, data: dict[str, Any]) -> str:
    provider = data.get("provider")
    if not isinstance(provider, str) or not provider:
        names = ", ".join([*sandbox.simulators, ALL_PROVIDERS])
        raise ControlError(400, "bad_provider", f'"provider" is required: one of {names}')
    if provider != ALL_PROVIDERS and provider not in sandbox.simulators:
        raise ControlError(404, "unknown_provider", f"no provider {provider!r}")
    return provider


def _integer(data: dict[str, Any], name: str, *, minimum: int, maximum: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ControlError(
            400, f"bad_{name}", f'"{name}" must be a whole number from {minimum} to {maximum}'
        )
    return value


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ControlError(400, "bad_headers", '"headers" must be an object of name: value')
    headers = {}
    for name, header_value in value.items():
        if isinstance(header_value, int | float) and not isinstance(header_value, bool):
            header_value = str(header_value)
        if not HEADER_NAME_PATTERN.match(name) or name.lower() in RESERVED_HEADERS:
            raise ControlError(400, "bad_headers", f"header name {name!r} is not allowed")
        if not isinstance(header_value, str) or not _is_header_text(header_value):
            raise ControlError(400, "bad_headers", f"header {name!r} needs a one-line text value")
        headers[name] = header_value
    return headers


def _is_header_text(value: str) -> bool:
    return value.isprintable() and value.isascii()


def _error(status: int, code: str, message: str) -> SandboxResponse:
    return SandboxResponse(status, {"error": {"code": code, "message": message}})
