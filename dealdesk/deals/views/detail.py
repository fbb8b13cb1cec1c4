"""The deal page, and its "Refresh from source" (one live read that updates the store)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from dealdesk.deals import services
from dealdesk.deals.errors import error_page, problem_for, sync_alert_context
from dealdesk.deals.pages import (
    DETAIL,
    detail_context,
    detail_redirect,
    editable_field,
    field_edit_context,
    get_detail,
)
from dealdesk.deals.roles import require_editor
from dealdesk.listtools.context import detail_extras
from dealdesk.providers.base import NotFound, ProviderError


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
