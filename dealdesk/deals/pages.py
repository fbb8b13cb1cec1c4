"""What the deal pages show: the list's sort links and paging, and the detail page's context,
its edit form and the redirect back to it. The views in ``views/`` (list, detail, fields,
states) and ``listtools/`` build their responses from these; no view module imports another.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils.http import urlencode

from dealdesk.deals import services
from dealdesk.deals.errors import (
    problem_for,
)
from dealdesk.deals.forms import FieldEditForm
from dealdesk.deals.roles import can_edit_deals
from dealdesk.deals.templatetags.deal_format import field_text, input_value
from dealdesk.providers.base import EditableField, NotFound, ProviderError
from dealdesk.sync.health import synced_ago
from dealdesk.timeline.selectors import deal_timeline

DETAIL = "deals/detail.html"
LIST_KEYS = ("q", "status", "source", "stage", "sort", "stale", "no_next_step", "page")
# The sharper filters and shown columns (``listtools/filters.py``) travel along too.
SHARP_KEYS = ("owner", "value_min", "value_max", "currency", "close_from", "close_to")
SHARP_KEYS += ("closing", "tags")
MULTI_KEYS = ("cols",)


# --- List -----------------------------------------------------------------------------------

# column -> first click
SORTABLE = {"name": "name", "value": "-value", "updated": "-updated", "close": "close"}


def sort_links(filters: services.DealFilters) -> dict[str, dict[str, str]]:
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


# --- Detail ---------------------------------------------------------------------------------


def back_query(request: HttpRequest) -> str:
    """The list's querystring passed along as ``?from=`` (only list keys survive)."""
    source = request.GET.get("from") or request.POST.get("from") or ""
    parsed = QueryDict(source)
    kept = QueryDict(mutable=True)
    for key in LIST_KEYS + SHARP_KEYS:
        value = parsed.get(key)
        if value:
            kept[key] = value
    for key in MULTI_KEYS:
        if key in parsed:
            kept.setlist(key, parsed.getlist(key))
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
        "timeline": deal_timeline(
            connection_slug=detail.connection.slug,
            provider=detail.connection.provider,
            deal_id=deal.id,
            history=detail.history,
        ),
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


def detail_url(request: HttpRequest, connection_slug: str, deal_id: str, **params: str) -> str:
    """The detail page's URL, keeping the list filters (``from``) and any extra params."""
    url = reverse("deals:detail", args=[connection_slug, deal_id])
    back = back_query(request)
    query = urlencode({**params, **({"from": back} if back else {})})
    return f"{url}?{query}" if query else url


def detail_redirect(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return HttpResponseRedirect(detail_url(request, connection_slug, deal_id))
