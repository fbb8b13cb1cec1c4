"""The fault matrix: each upstream failure, injected into the sandbox in each vendor's own shape.

A fault stays on until ``clear`` (a ``fail_next`` queue long enough for any action), so a test
sees every request of one user action fail, then the same action succeed once it is cleared.
``method`` aims a fault at the write request only: the GET that precedes a write still works.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

PERSISTENT = 50  # more failures queued than any one user action sends requests
READ_TIMEOUT = 0.5  # seconds: DealDesk's read timeout while a timeout fault is on
SLOW_MS = 1000  # the sandbox's answer time under a timeout fault, well past READ_TIMEOUT
NORMAL_READ_TIMEOUT = 5

STORA_ERRORS = {
    401: {"error": {"code": "invalid_token", "message": "The access token is invalid."}},
    403: {"error": {"code": "forbidden", "message": "The token lacks the deals:write scope."}},
    404: {"error": {"code": "resource_not_found", "message": "No such deal."}},
    409: {"error": {"code": "conflict", "message": "Refused by business rules."}},
    422: {
        "error": {
            "code": "invalid_content",
            "message": "The body failed validation.",
            "details": [{"pointer": "/name", "message": "value at `/name` is not allowed"}],
        }
    },
    429: {"error": {"code": "too_many_requests", "message": "Rate limit exceeded."}},
    500: {"error": {"code": "internal_server_error", "message": "Unexpected error."}},
}
NODESTASH_ERRORS = {
    401: {"error": {"code": "INVALID_API_KEY", "message": "Invalid API key."}},
    403: {"error": {"code": "INSUFFICIENT_SCOPE", "message": "This key lacks deals:write."}},
    404: {"error": {"code": "NOT_FOUND", "message": "Deal not found."}},
    409: {"error": {"code": "CONFLICT", "message": "The deal was changed by another request."}},
    400: {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Validation failed.",
            "details": [{"field": "title", "message": "Title is not allowed."}],
        }
    },
    429: {
        "error": {
            "code": "RATE_LIMITED",
            "message": "Too many requests.",
            "retry_after": 7,
            "upgrade_url": "https://nodestash.io/pricing",
        }
    },
    500: {"error": {"code": "INTERNAL_ERROR", "message": "Internal error."}},
}


def rate_limit_headers(provider: str) -> dict[str, str]:
    """Stora names the reset time (an epoch); nodestash says how many seconds to wait."""
    if provider == "stora":
        return {"RateLimit-Limit": "60", "RateLimit-Reset": str(int(time.time()) + 7)}
    return {"Retry-After": "7"}


@dataclass(frozen=True)
class Fault:
    name: str
    # The status DealDesk answers a detail page with, and words its alert must contain.
    page_status: int
    words: tuple[str, ...] = field(default=())

    def inject(self, sandbox, settings, provider: str, *, method: str | None = None) -> None:
        if self.name == "timeout":
            settings.DEALDESK_HTTP_READ_TIMEOUT = READ_TIMEOUT
            sandbox.set_latency(provider, SLOW_MS, method=method)
        elif self.name == "refused":
            sandbox.set_outage(provider, True, method=method)
        elif self.name == "malformed":
            sandbox.fail_next(provider, PERSISTENT, 200, "<html>not json", method=method)
        else:
            status = self.http_status(provider)
            errors = STORA_ERRORS if provider == "stora" else NODESTASH_ERRORS
            headers = rate_limit_headers(provider) if status == 429 else None
            sandbox.fail_next(provider, PERSISTENT, status, errors[status], headers, method=method)

    def http_status(self, provider: str) -> int:
        if self.name == "validation":
            return 422 if provider == "stora" else 400
        return int(self.name.removeprefix("http"))

    @staticmethod
    def clear(sandbox, settings, provider: str) -> None:
        settings.DEALDESK_HTTP_READ_TIMEOUT = NORMAL_READ_TIMEOUT
        sandbox.set_latency(provider, 0)
        sandbox.set_outage(provider, False)
        sandbox.fail_next(provider, 0, 200)


FAULTS = [
    Fault("timeout", 503, ("did not answer in time",)),
    Fault("refused", 503, ("cannot be reached",)),
    Fault("http500", 503, ("unavailable right now",)),
    Fault("malformed", 503, ("could not read",)),
    Fault("http401", 502, ("rejected", "admin must update it")),
    Fault("http403", 502, ("lacks", "admin must update it")),
    Fault("http404", 404, ()),
    Fault("http409", 409, ()),
    Fault("validation", 422, ("refused",)),
    Fault("http429", 429, ("try again in",)),
]
PROVIDERS = ["stora", "nodestash"]


def wait_until_answered(sandbox, provider: str, timeout: float = 5.0) -> None:
    """Wait for every request the sandbox received to finish (a slow write lands late)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(r.finished for r in sandbox.requests(provider)):
            return
        time.sleep(0.02)
    raise AssertionError(f"{provider} still answering after {timeout} s")
