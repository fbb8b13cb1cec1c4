"""The deal list over every source: one query over the store, filtered, sorted and paged."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from dealdesk.deals import services
from dealdesk.deals.announce import announce, deals_found
from dealdesk.deals.errors import connection_admin_url, error_page, problem_for
from dealdesk.deals.pages import page_number, page_query, sort_links
from dealdesk.listtools.context import list_extras
from dealdesk.providers.base import ProviderError


@require_GET
def deal_list_view(request: HttpRequest) -> HttpResponse:
    filters = services.DealFilters.from_querydict(request.GET)
    try:
        result = services.deal_list(
            filters=filters,
            page=page_number(request.GET),
            page_size=settings.DEALDESK_PAGE_SIZE,
            user=request.user,
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
        "sort_links": sort_links(filters),
        "current_query": current_query,
        "next_query": page_query(base_query, result.next_page),
        "prev_query": page_query(base_query, result.prev_page),
        "is_filtered": bool(
            filters.q
            or filters.status
            or filters.source
            or filters.stage
            or filters.stale
            or filters.no_next_step
            or filters.sharp_active
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
    response = TemplateResponse(request, template, context)
    found = deals_found(result.total_count, result.start_index, result.end_index, result.page)
    return announce(request, response, found)
