"""Error responses shared by every view: upstream problems in plain words, and a 404 that htmx
can act on.

Upstream failures never become a 500: ``problem_for`` turns each ``ProviderError`` into plain
words and a status code, and ``error_page`` shows them with a retry link.

htmx swaps no 404 (static/js/dealdesk.js), so a partial request for a deal that was deleted
upstream would leave the user looking at a stale form with no word of what happened. Such a
request gets ``HX-Refresh`` instead: the page reloads and the full 404 page says the deal is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.views.defaults import page_not_found as django_page_not_found

from dealdesk.connections.models import Connection
from dealdesk.deals import services
from dealdesk.deals.selectors import source_alerts_for
from dealdesk.providers.base import (
    QUOTA_SPENT,
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFound,
    ProviderError,
    RateLimited,
    Unavailable,
    ValidationFailed,
)


@dataclass(frozen=True)
class Problem:
    """What the user reads when an upstream call failed, and the status the response gets."""

    message: str
    status: int
    retry_after: int | None = None
    admin_url: str = ""
    source_label: str = ""


def connection_admin_url(request: HttpRequest, connection_slug: str) -> str:
    """The admin page where a staff user can fix a connection's API key ("" for others)."""
    if not request.user.is_staff or not connection_slug:
        return ""
    pk = Connection.objects.filter(slug=connection_slug).values_list("pk", flat=True).first()
    if pk is None:
        return ""
    try:
        return reverse("admin:connections_connection_change", args=[pk])
    except NoReverseMatch:
        return ""


def sync_alert_context(request: HttpRequest, connection_slug: str) -> dict:
    """The sync alert of one connection for a page (the board, a deal page), with the admin
    link a staff user needs when the alert is about the API key."""
    alerts = source_alerts_for(connection_slug)
    about_key = any(alert.kind in ("auth", "forbidden") for alert in alerts)
    return {
        "sync_alerts": alerts,
        "sync_admin_url": connection_admin_url(request, connection_slug) if about_key else "",
    }


def _plain_words(error: ProviderError, label: str, fallback: str) -> str:
    """The adapter's message when it wrote one for people (it names the source), else ours."""
    message = (error.message or "").strip()
    if not message or message == type(error).default_message:
        return fallback
    return message if label in message else f"{label}: {message}"


def problem_for(request: HttpRequest, error: ProviderError, connection_slug: str = "") -> Problem:
    label = error.connection_label or "The API"
    if isinstance(error, AuthenticationFailed | Forbidden):
        fallback = (
            f"{label} rejected DealDesk's API key. An admin must update it."
            if isinstance(error, AuthenticationFailed)
            else f"{label}'s API key lacks a permission DealDesk needs. An admin must update it."
        )
        return Problem(
            _plain_words(error, label, fallback),
            502,
            admin_url=connection_admin_url(request, connection_slug),
            source_label=label,
        )
    if isinstance(error, RateLimited):
        wait = error.retry_after_seconds
        if error.code == QUOTA_SPENT:  # its message says until when
            return Problem(error.message, 429, wait, source_label=label)
        when = f"try again in {wait} s" if wait else "try again in a few seconds"
        return Problem(f"{label} is rate-limiting DealDesk: {when}.", 429, wait, source_label=label)
    if isinstance(error, Unavailable):
        text = _plain_words(error, label, f"{label} is unavailable right now.")
        if error.code != services.WRITE_OUTCOME_UNKNOWN:  # that one says what to do already
            text += " Try again in a moment."
        return Problem(text, 503, source_label=label)
    if isinstance(error, NotFound):
        return Problem(f"{label} no longer has this deal.", 404, source_label=label)
    if isinstance(error, ValidationFailed):
        text = _plain_words(error, label, f"{label} refused the change.")
        return Problem(text, 422, source_label=label)
    if isinstance(error, Conflict):
        text = _plain_words(error, label, "The deal changed since you loaded it.")
        return Problem(
            f"{text} Nothing was changed; check the current state.", 409, source_label=label
        )
    text = _plain_words(error, label, f"{label} returned an error.")
    return Problem(text, 502, source_label=label)


def with_retry_after(response: HttpResponse, problem: Problem | None) -> HttpResponse:
    if problem is not None and problem.retry_after:
        response["Retry-After"] = str(problem.retry_after)
    return response


def error_page(request: HttpRequest, problem: Problem) -> HttpResponse:
    response = TemplateResponse(
        request,
        "deals/error.html",
        {"problem": problem, "retry_url": request.get_full_path()},
        status=problem.status,
    )
    return with_retry_after(response, problem)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if getattr(request, "htmx", False):
        response = HttpResponse(status=404)
        response["HX-Refresh"] = "true"
        return response
    return django_page_not_found(request, exception)
