"""Control endpoints for the synced store's tests, under ``/__sandbox/`` (see ``control.py``):

    POST   /__sandbox/plan       {"provider": "nodestash", "plan"?, "daily_remaining"?}
    DELETE /__sandbox/deals/<provider>/<deal_id>       the deal is gone upstream (no webhook)
    GET    /__sandbox/webhooks                          endpoints (with secrets), faults, queue
    POST   /__sandbox/webhooks   {"url", "secret"?, "event_types"?}   register, no URL checks
    DELETE /__sandbox/webhooks                          remove every endpoint
    POST   /__sandbox/webhooks/faults {"kind", "count"?, "seconds"?}
    POST   /__sandbox/webhooks/retry  {"scale"}         retry delays x scale
    GET    /__sandbox/webhooks/deliveries?attempts=N&timeout=S   the attempts (waits for N)
    DELETE /__sandbox/webhooks/deliveries

Each mirrors a ``SyncControls`` method (``sync_controls.py``).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import unquote

from dealdesk.sandbox.control import (
    ControlError,
    _allow,
    _integer,
    _json_object,
    _only_keys,
    sandbox_status,
)
from dealdesk.sandbox.core import Sandbox, SandboxResponse
from dealdesk.sandbox.nodestash import PLANS
from dealdesk.sandbox.webhooks import FAULT_KINDS

MAX_FAULT_COUNT = 10_000
MAX_WAIT_SECONDS = 60


def route_sync(
    sandbox: Sandbox, method: str, route: str, query: dict[str, list[str]], body: bytes
) -> SandboxResponse | None:
    """The response for one of this module's endpoints, or None for any other route."""
    if route == "plan":
        _allow(method, "POST")
        return _plan(sandbox, _json_object(body))
    if route.startswith("deals/") and method == "DELETE":
        provider, _, deal_id = route.removeprefix("deals/").partition("/")
        return _delete(sandbox, unquote(provider), unquote(deal_id))
    if route == "webhooks":
        _allow(method, "GET", "POST", "DELETE")
        if method == "POST":
            return _register(sandbox, _json_object(body))
        if method == "DELETE":
            sandbox.remove_webhooks()
        return SandboxResponse(200, webhook_status(sandbox))
    if route == "webhooks/faults":
        _allow(method, "POST")
        return _fault(sandbox, _json_object(body))
    if route == "webhooks/retry":
        _allow(method, "POST")
        data = _json_object(body)
        _only_keys(data, "scale")
        scale = data.get("scale")
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 <= scale <= 100:
            raise ControlError(400, "bad_scale", '"scale" must be a number from 0 to 100')
        sandbox.set_webhook_retry_scale(scale)
        return SandboxResponse(200, webhook_status(sandbox))
    if route == "webhooks/deliveries":
        _allow(method, "GET", "DELETE")
        if method == "DELETE":
            sandbox.clear_webhook_deliveries()
            return SandboxResponse(200, {"cleared": True})
        return _deliveries(sandbox, query)
    return None


def provider_sync_status(sandbox: Sandbox, provider: str) -> dict[str, Any]:
    """What ``GET /__sandbox/`` adds per provider: nodestash's quota, Stora's webhooks."""
    simulator = sandbox.simulators[provider]
    if hasattr(simulator, "quota"):
        return {"quota": sandbox.quota(provider)}
    if hasattr(simulator, "webhooks"):
        return {
            "webhook_endpoints": len(sandbox.webhook_endpoints()),
            "webhook_pending": sandbox.webhook_sender.pending(),
        }
    return {}


def webhook_status(sandbox: Sandbox) -> dict[str, Any]:
    sender = sandbox.webhook_sender
    return {
        "endpoints": sandbox.webhook_endpoints(),
        "faults": sender.faults(),
        "retry_scale": sender.retry_scale,
        "pending": sender.pending(),
        "deliveries": len(sender.deliveries()),
    }


def _plan(sandbox: Sandbox, data: dict[str, Any]) -> SandboxResponse:
    _only_keys(data, "provider", "plan", "daily_remaining")
    provider = data.get("provider")
    if provider not in sandbox.simulators:
        raise ControlError(404, "unknown_provider", f"no provider {provider!r}")
    if provider != "nodestash":
        raise ControlError(400, "bad_provider", "only nodestash has plans")
    plan = data.get("plan")
    if plan is not None and plan not in PLANS:
        raise ControlError(400, "bad_plan", f'"plan" must be one of {", ".join(PLANS)}')
    if plan is None and "daily_remaining" not in data:
        raise ControlError(400, "no_changes", 'send "plan", "daily_remaining" or both')
    daily_limit = PLANS[plan][1] if plan else sandbox.quota(provider)["daily_limit"]
    remaining = None
    if "daily_remaining" in data:
        remaining = _integer(data, "daily_remaining", minimum=0, maximum=daily_limit)
    if plan:
        sandbox.set_plan(provider, plan)
    if remaining is not None:
        sandbox.set_daily_remaining(provider, remaining)
    return SandboxResponse(200, sandbox_status(sandbox))


def _delete(sandbox: Sandbox, provider: str, deal_id: str) -> SandboxResponse:
    if provider not in sandbox.simulators:
        raise ControlError(404, "unknown_provider", f"no provider {provider!r}")
    if not deal_id or "/" in deal_id:
        raise ControlError(404, "unknown_endpoint", "use /__sandbox/deals/<provider>/<deal_id>")
    try:
        sandbox.delete_deal(provider, deal_id)
    except KeyError:
        raise ControlError(404, "unknown_deal", f"{provider} has no deal {deal_id!r}") from None
    return SandboxResponse(200, {"deleted": deal_id})


def _register(sandbox: Sandbox, data: dict[str, Any]) -> SandboxResponse:
    _only_keys(data, "url", "secret", "event_types")
    url, secret = data.get("url"), data.get("secret")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ControlError(400, "bad_url", '"url" must be an http:// or https:// URL')
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise ControlError(400, "bad_secret", '"secret" must be a non-empty string')
    event_types = data.get("event_types", ["deal.updated", "deal.lost"])
    if (
        not isinstance(event_types, list)
        or not event_types
        or any(t not in ("deal.updated", "deal.lost") for t in event_types)
    ):
        raise ControlError(400, "bad_event_types", '"event_types": deal.updated, deal.lost')
    endpoint = sandbox.register_webhook(url, secret=secret, event_types=event_types)
    return SandboxResponse(201, {"webhook_endpoint": endpoint})


def _fault(sandbox: Sandbox, data: dict[str, Any]) -> SandboxResponse:
    _only_keys(data, "kind", "count", "seconds")
    kind = data.get("kind")
    if kind not in FAULT_KINDS:
        raise ControlError(400, "bad_kind", f'"kind" must be one of {", ".join(FAULT_KINDS)}')
    count = _integer({"count": data.get("count", 1)}, "count", minimum=0, maximum=MAX_FAULT_COUNT)
    seconds = data.get("seconds", 0)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds <= MAX_WAIT_SECONDS
    ):
        raise ControlError(
            400, "bad_seconds", f'"seconds" must be a number from 0 to {MAX_WAIT_SECONDS}'
        )
    sandbox.webhook_fault(kind, count, seconds=seconds)
    return SandboxResponse(200, webhook_status(sandbox))


def _deliveries(sandbox: Sandbox, query: dict[str, list[str]]) -> SandboxResponse:
    attempts = _query_number(query, "attempts", maximum=MAX_FAULT_COUNT)
    timeout = _query_number(query, "timeout", maximum=MAX_WAIT_SECONDS)
    if attempts is None and timeout is None:
        return SandboxResponse(200, {"deliveries": sandbox.webhook_deliveries()})
    deliveries = sandbox.wait_for_webhooks(
        None if attempts is None else int(attempts), timeout=5.0 if timeout is None else timeout
    )
    return SandboxResponse(200, {"deliveries": deliveries})


def _query_number(query: dict[str, list[str]], name: str, *, maximum: float) -> float | None:
    raw = (query.get(name) or [""])[0]
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= maximum:
        raise ControlError(400, f"bad_{name}", f"{name} must be a number from 0 to {maximum}")
    return value
