"""The deal list's saved views, bulk actions and Previous/Next across list pages (HTTP only; the
work is in ``saved_views.py``, ``bulk.py`` and ``navigation.py``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    QueryDict,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from dealdesk.deals import services
from dealdesk.deals.announce import announce
from dealdesk.deals.errors import error_page, problem_for
from dealdesk.deals.pages import page_number, page_query
from dealdesk.deals.roles import require_editor
from dealdesk.listtools.bulk import ACTIONS, BulkRefused, BulkRow, bulk_apply
from dealdesk.listtools.export import export_lines
from dealdesk.listtools.navigation import deal_nav_remember
from dealdesk.listtools.saved_views import saved_view_delete, saved_view_list, saved_view_save
from dealdesk.listtools.selectors import deal_export_rows
from dealdesk.providers.base import ProviderError

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
    response = _saved_views_response(request, saved_name=view.name)
    return announce(request, response, f"Saved “{view.name}”.")


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
        return _bulk_response(request, context, status=error.status)  # an alert: read at once
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
    said = f"{context['bulk_saved']} saved" + (
        f", {context['bulk_failed']} failed" if context["bulk_failed"] else ""
    )
    return announce(request, _bulk_response(request, context), said)


def _bulk_response(request: HttpRequest, context: dict[str, Any], status: int = 200):
    if request.htmx:
        return TemplateResponse(request, f"{LIST}#bulk-results", context, status=status)
    # Without JavaScript: the results on a page of their own, with the way back to the list.
    context["back_url"] = _list_url(request.POST.get("back", ""))
    return TemplateResponse(request, "deals/bulk_results.html", context, status=status)


# --- Previous/Next ---------------------------------------------------------------------------


@require_GET
def deal_nav_step_view(request: HttpRequest) -> HttpResponse:
    """Previous/Next across the edge of a list page: load that page of the same filtered list
    once, remember it for the next steps, and open its first (or last) deal."""
    params = QueryDict(request.GET.get("from", ""))
    filters = services.DealFilters.from_querydict(params)
    try:
        result = services.deal_list(
            filters=filters,
            page=page_number(params),
            page_size=settings.DEALDESK_PAGE_SIZE,
            user=request.user,
        )
    except ProviderError as error:
        return error_page(request, problem_for(request, error))
    base_query = filters.to_querystring()
    query = page_query(base_query, result.page) or ""
    deals = list(result.deals)  # opened next: read now, not only counted
    if not deals:
        return HttpResponseRedirect(reverse("deals:list") + (f"?{query}" if query else ""))
    deal_nav_remember(
        request.session,
        query,
        [deal.key for deal in deals],
        next_query=page_query(base_query, result.next_page),
        prev_query=page_query(base_query, result.prev_page),
    )
    deal = deals[-1] if request.GET.get("pick") == "last" else deals[0]
    url = reverse("deals:detail", args=[deal.connection_slug, deal.id])
    return HttpResponseRedirect(f"{url}?{urlencode({'from': query})}" if query else url)


# --- CSV export ------------------------------------------------------------------------------


@require_GET
def deal_export_view(request: HttpRequest) -> StreamingHttpResponse:
    """Every deal of the filtered list (the list's own querystring), streamed as CSV."""
    filters = services.DealFilters.from_querydict(request.GET)
    rows = deal_export_rows(filters=filters, user=request.user)
    response = StreamingHttpResponse(
        export_lines(rows, filters.cols), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localtime().strftime("%Y-%m-%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="deals-{stamp}.csv"'
    return response
