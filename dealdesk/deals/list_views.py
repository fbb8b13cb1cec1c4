"""The deal list's saved views and bulk actions (HTTP only; the work is in ``saved_views.py`` and
``bulk.py``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from dealdesk.deals import services
from dealdesk.deals.bulk import ACTIONS, BulkRefused, BulkRow, bulk_apply
from dealdesk.deals.errors import problem_for
from dealdesk.deals.roles import require_editor
from dealdesk.deals.saved_views import saved_view_delete, saved_view_list, saved_view_save

LIST = "deals/list.html"


# --- Saved views -----------------------------------------------------------------------------


def _saved_views_response(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    context = {
        "filters": services.DealFilters.from_querydict(request.POST),
        "saved_views": saved_view_list(user=request.user),
        **extra,
    }
    context["save_query"] = context["filters"].to_querystring()
    return TemplateResponse(request, f"{LIST}#saved-views", context, status=status)


@require_POST
def saved_view_save_view(request: HttpRequest) -> HttpResponse:
    """Save the list's current filters (posted as the list's own keys) under a name."""
    filters = services.DealFilters.from_querydict(request.POST)
    name = request.POST.get("name", "")
    try:
        view = saved_view_save(user=request.user, name=name, filters=filters)
    except ValueError as error:
        if not request.htmx:
            messages.error(request, str(error))
            return HttpResponseRedirect(_list_url(filters.to_querystring()))
        return _saved_views_response(request, 422, view_error=str(error), typed_name=name)
    if not request.htmx:
        return HttpResponseRedirect(_list_url(view.querystring))
    return _saved_views_response(request, saved_name=view.name)


@require_POST
def saved_view_delete_view(request: HttpRequest, view_id: int) -> HttpResponse:
    saved_view_delete(user=request.user, view_id=view_id)
    if not request.htmx:
        filters = services.DealFilters.from_querydict(request.POST)
        return HttpResponseRedirect(_list_url(filters.to_querystring()))
    return _saved_views_response(request)


def _list_url(querystring: str) -> str:
    url = reverse("deals:list")
    return f"{url}?{querystring}" if querystring else url


# --- Bulk actions ----------------------------------------------------------------------------


@require_POST
def bulk_view(request: HttpRequest) -> HttpResponse:
    require_editor(request)
    action = request.POST.get("action", "")
    choice = {"change_stage": "bulk_stage", "mark_lost": "bulk_reason"}.get(action, "")
    try:
        rows = [
            BulkRow.parse(key, request.POST.get(f"state:{key}", ""))
            for key in dict.fromkeys(request.POST.getlist("deal"))
        ]
        outcomes = bulk_apply(
            user=request.user,
            action=action,
            rows=rows,
            choice=request.POST.get(choice, "") if choice else "",
            idempotency_key=request.POST.get("idempotency_key", "")[:64],
        )
    except BulkRefused as error:
        context = {"bulk_refused": error.message, "bulk_action_label": ACTIONS.get(action, "")}
        return _bulk_response(request, context, status=error.status)
    results = [
        {
            "name": outcome.name or "(no name)",
            "key": outcome.row.key,
            "url": reverse("deals:detail", args=[outcome.row.connection_slug, outcome.row.deal_id]),
            "ok": outcome.ok,
            "message": ""
            if outcome.ok
            else problem_for(request, outcome.error, outcome.row.connection_slug).message,
        }
        for outcome in outcomes
    ]
    context = {
        "bulk_results": results,
        "bulk_action_label": ACTIONS[action],
        "bulk_saved": sum(1 for r in results if r["ok"]),
        "bulk_failed": sum(1 for r in results if not r["ok"]),
    }
    return _bulk_response(request, context)


def _bulk_response(request: HttpRequest, context: dict[str, Any], status: int = 200):
    if request.htmx:
        return TemplateResponse(request, f"{LIST}#bulk-results", context, status=status)
    # Without JavaScript: the results on a page of their own, with the way back to the list.
    context["back_url"] = _list_url(request.POST.get("back", ""))
    return TemplateResponse(request, "deals/bulk_results.html", context, status=status)
