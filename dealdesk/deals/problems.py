"""ONE table: what an upstream failure (a ``ProviderError``) means to the people who see it.

Each row names the kind of failure, the HTTP status a page answers with, the words a user
reads (``{label}`` is the source; the adapter's own sentence is shown instead when the row says
so and the adapter wrote one for people), the words the admin's "Test connection" shows, and the
hint a page adds: try again in a moment when waiting can help, "" when it cannot or when the
message says what to do already. Views, the list's and board's
source alerts, the sync's stored alert kind, the admin and the htmx swap-on-error statuses
(static/js/dealdesk.js swaps these statuses) all read it.

Rows are matched in order: the first whose class matches and whose ``code`` is the error's code
(or None, for any code).
"""

from __future__ import annotations

from dataclasses import dataclass

from dealdesk.providers.base import (
    QUOTA_SPENT,
    WRITE_OUTCOME_UNKNOWN,
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFound,
    ProviderError,
    RateLimited,
    Unavailable,
    ValidationFailed,
)

ADMIN_MUST_UPDATE = "An admin must update it."
TRY_AGAIN = "Try again in a moment."


@dataclass(frozen=True)
class Wording:
    error: type[ProviderError]
    code: str | None  # None: any code of this class
    kind: str  # auth, forbidden, rate_limited, unavailable, not_found, refused, conflict, error
    status: int
    words: str  # for a user; "{label}" is the source, "{wait}" when to try again
    test_words: str  # the admin's "Test connection" result, after "Label (slug): "
    hint: str  # what to do next, added after the words on a page
    adapter_words: bool = True  # show the adapter's own sentence when it wrote one


# fmt: off
PROBLEMS: tuple[Wording, ...] = (
    Wording(AuthenticationFailed, None, "auth", 502,
            f"{{label}} rejected the API key. {ADMIN_MUST_UPDATE}",
            "key rejected — update the API key", ""),
    Wording(Forbidden, None, "forbidden", 502,
            f"The {{label}} API key lacks a permission DealDesk needs. {ADMIN_MUST_UPDATE}",
            "key lacks a permission DealDesk needs — update the API key", ""),
    Wording(RateLimited, QUOTA_SPENT, "rate_limited", 429,
            "{label}'s daily quota is spent: {wait}.",  # the adapter's message says until when
            "rate limited — {wait}", ""),
    Wording(RateLimited, "client_rate_budget", "rate_limited", 429,
            "DealDesk paused calls to {label} to stay under its rate limit: {wait}.",
            "rate limited — {wait}", "", adapter_words=False),
    Wording(RateLimited, None, "rate_limited", 429,
            "{label} is rate limiting DealDesk: {wait}.",
            "rate limited — {wait}", "", adapter_words=False),
    Wording(Unavailable, WRITE_OUTCOME_UNKNOWN, "unavailable", 503,
            "{label} did not confirm the change.",  # the adapter's message says what to do
            "unavailable right now — try again later", ""),
    Wording(Unavailable, "unreachable", "unavailable", 503,
            "{label} cannot be reached.",
            "unreachable — check the base URL", TRY_AGAIN),
    Wording(Unavailable, "timeout", "unavailable", 503,
            "{label} did not answer in time.",
            "did not answer in time — check the base URL or try again later", TRY_AGAIN),
    Wording(Unavailable, "malformed_response", "unavailable", 503,
            "{label} sent a response DealDesk could not read.",
            "answered with something that is not its API — check the base URL", TRY_AGAIN),
    Wording(Unavailable, None, "unavailable", 503,
            "{label} is unavailable right now.",
            "unavailable right now — try again later", TRY_AGAIN),
    Wording(NotFound, None, "not_found", 404,
            "{label} no longer has this deal.",
            "no API found at this base URL — check the base URL", "", adapter_words=False),
    Wording(ValidationFailed, None, "refused", 422,
            "{label} refused the change.",
            "failed — {message}", ""),
    Wording(Conflict, None, "conflict", 409,
            "The deal changed since you loaded it.",
            "failed — {message}", "Nothing was changed; check the current state."),
    Wording(ProviderError, None, "error", 502,
            "{label} returned an error.",
            "failed — {message}", ""),
)
# fmt: on


def wording_for(error: ProviderError) -> Wording:
    for row in PROBLEMS:
        if isinstance(error, row.error) and row.code in (None, error.code):
            return row
    raise AssertionError("the last row matches every ProviderError")  # pragma: no cover


def _wait(error: ProviderError, unknown: str = "try again in a few seconds") -> str:
    seconds = error.retry_after_seconds if isinstance(error, RateLimited) else None
    return f"try again in {seconds} s" if seconds else unknown


def retry_after(error: ProviderError) -> int | None:
    """Seconds a client should wait (the ``Retry-After`` header), when the vendor said."""
    return error.retry_after_seconds if isinstance(error, RateLimited) else None


def problem_words(error: ProviderError, label: str = "") -> str:
    """What a user reads: the adapter's own sentence when it wrote one for people (it names
    the source), else the table's words; then the retry hint."""
    label = label or error.connection_label or "The API"
    row = wording_for(error)
    own = (error.message or "").strip()
    if not row.adapter_words or not own or own == type(error).default_message:
        text = row.words.format(label=label, wait=_wait(error))
    else:
        text = own if label in own else f"{label}: {own}"
    return f"{text} {row.hint}" if row.hint else text


def problem_status(error: ProviderError) -> int:
    return wording_for(error).status


def problem_kind(error: ProviderError) -> str:
    return wording_for(error).kind


def connection_test_words(error: ProviderError) -> str:
    """The admin's "Test connection" result for a failed ping."""
    row = wording_for(error)
    if row.error is Unavailable and row.code is None and error.status:
        return f"unavailable (HTTP {error.status}) — try again later"
    wait = _wait(error, unknown="try again shortly")
    return row.test_words.format(wait=wait, message=error.message)


def swap_statuses() -> list[int]:
    """The statuses whose response htmx swaps in (its own words replace the form)."""
    return sorted({row.status for row in PROBLEMS} - {404})
