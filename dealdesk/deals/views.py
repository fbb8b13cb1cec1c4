"""Deal screens: the list over every source and the detail page, with the detail helpers the
field and state views share (``field_views.py``, ``state_views.py``).

Views speak HTTP only: parse the request, call one function of ``dealdesk.deals.services``,
render a page or a named partial of it. Upstream failures never become a 500: ``problem_for``
(``errors.py``) turns each ``ProviderError`` into plain words and a status code.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from dealdesk.deals import services
from dealdesk.deals.deal_nav import deal_nav_remember
from dealdesk.deals.errors import (
    connection_admin_url,
    error_page,
    problem_for,
    sync_alert_context,
)
from dealdesk.deals.forms import FieldEditForm
from dealdesk.deals.list_context import detail_extras, list_extras
from dealdesk.deals.roles import can_edit_deals, require_editor
from dealdesk.deals.templatetags.deal_format import field_text, input_value
from dealdesk.providers.base import EditableField, NotFound, ProviderError
from dealdesk.sync.health import synced_ago

DETAIL = "deals/detail.html"
LIST_KEYS = ("q", "status", "source", "stage", "sort", "stale", "page")


# --- List -----------------------------------------------------------------------------------

SORTABLE = {"name": "name", "value": "-value", "updated": "-updated"}  # column -> first click


def _sort_links(filters: services.DealFilters) -> dict[str, dict[str, str]]:
    links = {}
    for column, first in SORTABLE.items():
        if filters.sort == column:
            target, aria = f"-{column}", "ascending"
        elif filters.sort == f"-{column}":
            target, aria = column, "descending"
        else:
            target, aria = first, "none"
        links[column] = {"query": filters.to_querystring(sort=target), "aria": aria}
    return links


def page_query(base: str, page: int | None) -> str | None:
    """The list querystring for another page; ``None`` when there is no such page."""
    if page is None:
        return None
    if page <= 1:
        return base
    number = urlencode({"page": page})
    return f"{base}&{number}" if base else number


def page_number(data: QueryDict) -> int:
    raw = (data.get("page") or "").strip()
    return int(raw) if raw.isdigit() and 0 < len(raw) <= 6 else 1


@require_GET
def deal_list_view(request: HttpRequest) -> HttpResponse:
    filters = services.DealFilters.from_querydict(request.GET)
    try:
        result = services.deal_list(
            filters=filters, page=page_number(request.GET), page_size=settings.DEALDESK_PAGE_SIZE
        )
    except ProviderError as error:
        return error_page(request, problem_for(request, error))
    base_query = filters.to_querystring()
    current_query = page_query(base_query, result.page)
    source_alerts = [
        {
            "error": error,
            "admin_url": connection_admin_url(request, error.connection_slug)
            if error.kind in ("auth", "forbidden")
            else "",
        }
        for error in result.errors
    ]
    context = {
        "filters": filters,
        "result": result,
        "source_alerts": source_alerts,
        "sort_links": _sort_links(filters),
        "current_query": current_query,
        "next_query": page_query(base_query, result.next_page),
        "prev_query": page_query(base_query, result.prev_page),
        "is_filtered": bool(
            filters.q or filters.status or filters.source or filters.stage or filters.stale
        ),
    }
    context.update(
        list_extras(
            request,
            filters,
            result,
            current_query,
            next_query=context["next_query"],
            prev_query=context["prev_query"],
        )
    )
    template = "deals/list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#list-results"
    return TemplateResponse(request, template, context)


@require_GET
def deal_nav_step_view(request: HttpRequest) -> HttpResponse:
    """Previous/Next across the edge of a list page: load that page of the same filtered list
    once, remember it for the next steps, and open its first (or last) deal."""
    params = QueryDict(request.GET.get("from", ""))
    filters = services.DealFilters.from_querydict(params)
    try:
        result = services.deal_list(
            filters=filters, page=page_number(params), page_size=settings.DEALDESK_PAGE_SIZE
        )
    except ProviderError as error:
        return error_page(request, problem_for(request, error))
    base_query = filters.to_querystring()
    query = page_query(base_query, result.page) or ""
    if not result.deals:
        return HttpResponseRedirect(reverse("deals:list") + (f"?{query}" if query else ""))
    deal_nav_remember(
        request.session,
        query,
        [d.key for d in result.deals],
        next_query=page_query(base_query, result.next_page),
        prev_query=page_query(base_query, result.prev_page),
    )
    deal = result.deals[-1] if request.GET.get("pick") == "last" else result.deals[0]
    url = reverse("deals:detail", args=[deal.connection_slug, deal.id])
    return HttpResponseRedirect(f"{url}?{urlencode({'from': query})}" if query else url)


# --- Detail ---------------------------------------------------------------------------------


def back_query(request: HttpRequest) -> str:
    """The list's querystring passed along as ``?from=`` (only list keys survive)."""
    source = request.GET.get("from") or request.POST.get("from") or ""
    parsed = QueryDict(source)
    kept = QueryDict(mutable=True)
    for key in LIST_KEYS:
        value = parsed.get(key)
        if value:
            kept[key] = value
    return kept.urlencode()


def detail_context(request: HttpRequest, detail: services.DealDetail, **extra: Any) -> dict:
    deal = detail.deal
    context = {
        "detail": detail,
        "deal": deal,
        "fields": detail.fields,
        "field_names": [field.name for field in detail.fields],
        "actions": detail.actions,
        "history": detail.history,
        "connection": detail.connection,
        "can_edit": can_edit_deals(request.user),
        "back_query": back_query(request),
        "seen_updated_at": deal.updated_at.isoformat() if deal.updated_at else "",
        "synced_ago": synced_ago(detail.synced_at) if detail.synced_at else "",
        "connection_slug": detail.connection.slug,
        "deal_id": deal.id,
    }
    context.update(extra)
    return context


def get_detail(request: HttpRequest, connection_slug: str, deal_id: str, need=()):
    """``(detail, None)`` or ``(None, problem)``; an unknown deal or connection is a 404.
    ``need``: fields about to be edited (read live when the store never saw them)."""
    try:
        detail = services.deal_get(connection_slug=connection_slug, deal_id=deal_id, need=need)
        return detail, None
    except NotFound as error:
        raise Http404(error.message) from error
    except ProviderError as error:
        return None, problem_for(request, error, connection_slug)


def editable_field(detail: services.DealDetail, name: str) -> EditableField:
    for field in detail.fields:
        if field.name == name:
            return field
    raise Http404("This field cannot be edited on this deal.")


def field_edit_context(
    request: HttpRequest, detail: services.DealDetail, field: EditableField, **extra: Any
) -> dict:
    """The edit form of ``field``. A Save is checked against what the page showed (``seen``,
    ``shown``, sent by the page's Edit button), not what this read found; when the two differ
    the form says so before anything is typed."""
    current_text = input_value(field.kind, field.value)
    seen, shown = request.GET.get("seen", ""), request.GET.get("shown")
    page: dict[str, Any] = {"original_text": current_text}
    if seen:
        page["seen_updated_at"] = seen
    if shown is not None:
        page["original_text"] = shown
        if shown != current_text:
            page["changed_since_page"] = changed_since_page(field, detail.deal)
    return detail_context(
        request, detail, field=field, editing=field.name, form=FieldEditForm(field), **page, **extra
    )


def changed_since_page(field: EditableField, deal) -> str:
    current = field_text(field, deal)
    if not current:
        return f"{field.label} was cleared since you loaded this page."
    return f"{field.label} changed to “{current}” since you loaded this page."


@require_GET
def deal_detail_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    editing = request.GET.get("edit", "")
    detail, problem = get_detail(request, connection_slug, deal_id, need=(editing,))
    if problem:
        return error_page(request, problem)
    context = detail_context(request, detail)
    context.update(sync_alert_context(request, connection_slug))
    context.update(detail_extras(request, detail.deal, context["back_query"]))
    if context["can_edit"]:
        if editing in context["field_names"]:
            context.update(field_edit_context(request, detail, editable_field(detail, editing)))
        action = request.GET.get("action", "")
        if action == "lose" and detail.actions.can_lose:
            context["state_form"] = "lose"
        elif action == "reopen" and detail.actions.can_reopen:
            context["state_form"] = "reopen"
    return TemplateResponse(request, DETAIL, context)


@require_POST
def deal_refresh_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    """Read this one deal live (one upstream call) and update the store."""
    require_editor(request)
    try:
        services.deal_refresh(connection_slug=connection_slug, deal_id=deal_id)
    except NotFound as error:
        raise Http404(error.message) from error
    except ProviderError as error:
        messages.error(request, problem_for(request, error, connection_slug).message)
    else:
        messages.success(request, "Refreshed from the source just now.")
    return detail_redirect(request, connection_slug, deal_id)


def detail_url(request: HttpRequest, connection_slug: str, deal_id: str, **params: str) -> str:
    """The detail page's URL, keeping the list filters (``from``) and any extra params."""
    url = reverse("deals:detail", args=[connection_slug, deal_id])
    back = back_query(request)
    query = urlencode({**params, **({"from": back} if back else {})})
    return f"{url}?{query}" if query else url


def detail_redirect(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return HttpResponseRedirect(detail_url(request, connection_slug, deal_id))
