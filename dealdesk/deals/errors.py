"""Error responses shared by every view: upstream problems in plain words, and a 404 that htmx
can act on.

Upstream failures never become a 500: ``problem_for`` turns each ``ProviderError`` into plain
words and a status code (the table in ``problems.py``), and ``error_page`` shows them with a
retry link.

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
from dealdesk.deals.problems import problem_kind, problem_status, problem_words, retry_after
from dealdesk.deals.selectors import source_alerts_for
from dealdesk.providers.base import ProviderError


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


def problem_for(request: HttpRequest, error: ProviderError, connection_slug: str = "") -> Problem:
    """The page's words and status for ``error``, from the one table in ``problems.py``."""
    label = error.connection_label or "The API"
    about_key = problem_kind(error) in ("auth", "forbidden")
    return Problem(
        problem_words(error, label),
        problem_status(error),
        retry_after(error),
        admin_url=connection_admin_url(request, connection_slug) if about_key else "",
        source_label=label,
    )


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
