"""Stage and state changes on the detail page: change stage, won, lost and reopen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from dealdesk.deals import services
from dealdesk.deals.announce import announce
from dealdesk.deals.errors import Problem, problem_for, with_retry_after
from dealdesk.deals.forms import LostForm, ReopenForm, StageForm, StateChangeForm
from dealdesk.deals.pages import (
    DETAIL,
    detail_context,
    detail_redirect,
    detail_url,
    get_detail,
)
from dealdesk.deals.roles import require_editor
from dealdesk.providers.base import NotFound, ProviderError


def _state_response(
    request: HttpRequest,
    connection_slug: str,
    deal_id: str,
    detail: services.DealDetail,
    reopened: bool = False,
) -> HttpResponse:
    if not request.htmx:
        return detail_redirect(request, connection_slug, deal_id)
    response = TemplateResponse(request, f"{DETAIL}#state-saved", detail_context(request, detail))
    return announce(request, response, _state_words(detail.deal, reopened))


def _state_words(deal: Any, reopened: bool) -> str:
    """What the live region says after a state write: the deal's state as it now is."""
    stage = deal.stage.name if deal.stage else ""
    if deal.status == "won":
        return "Marked won"
    if deal.status == "lost":
        reason = deal.lost_reason_label or stage
        return f"Marked lost: {reason}" if reason else "Marked lost"
    if reopened:
        return f"Reopened in {stage}" if stage else "Reopened"
    return f"Stage changed to {stage}" if stage else "Saved"


def _state_unavailable(
    request: HttpRequest, connection_slug: str, deal_id: str, problem: Problem
) -> HttpResponse:
    """The deal could not even be read: the state region (or a page) says so, with a reload."""
    if request.htmx:
        context = {"state_problem": problem, "connection_slug": connection_slug, "deal_id": deal_id}
        template = f"{DETAIL}#state-unavailable"
    else:
        context = {"problem": problem, "retry_url": request.get_full_path()}
        template = "deals/error.html"
    response = TemplateResponse(request, template, context, status=problem.status)
    return with_retry_after(response, problem)


def _state_form_again(
    request: HttpRequest,
    connection_slug: str,
    deal_id: str,
    *,
    status: int,
    state_form: str = "",
    form: Any = None,
    problem: Problem | None = None,
) -> HttpResponse:
    """The #deal-state region read fresh, with the problem and (for lose/reopen) the form."""
    detail, read_problem = get_detail(request, connection_slug, deal_id)
    if detail is None:
        return _state_unavailable(request, connection_slug, deal_id, problem or read_problem)
    still_possible = {"lose": detail.actions.can_lose, "reopen": detail.actions.can_reopen}
    if not still_possible.get(state_form, False):
        state_form = ""
    context = detail_context(
        request,
        detail,
        state_problem=problem,
        state_form=state_form,
        state_form_errors=form.errors if form is not None else {},
        state_posted=request.POST,
    )
    template = f"{DETAIL}#state-failed" if request.htmx else DETAIL
    response = TemplateResponse(request, template, context, status=status)
    return with_retry_after(response, problem)


def _state_change(
    request: HttpRequest,
    connection_slug: str,
    deal_id: str,
    form_class: type[StateChangeForm],
    write: Callable[..., services.DealDetail],
    state_form: str = "",
) -> HttpResponse:
    """Every state write, one pattern: an editor's POST, Cancel (of the lose and reopen forms),
    validate, call the service write, answer with the new state or the problem."""
    require_editor(request)
    if state_form and request.POST.get("cancel"):
        return detail_redirect(request, connection_slug, deal_id)
    form = form_class(request.POST)
    if not form.is_valid():
        return _state_form_again(
            request, connection_slug, deal_id, status=422, state_form=state_form, form=form
        )
    try:
        detail = write(
            **form.write_kwargs(user=request.user, connection_slug=connection_slug, deal_id=deal_id)
        )
    except NotFound as error:
        raise Http404(error.message) from error
    except ProviderError as error:
        problem = problem_for(request, error, connection_slug)
        return _state_form_again(
            request,
            connection_slug,
            deal_id,
            status=problem.status,
            state_form=state_form,  # kept with the user's choices while the action still applies
            problem=problem,
        )
    return _state_response(request, connection_slug, deal_id, detail, state_form == "reopen")


@require_GET
def state_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    """The #deal-state region on its own (Cancel of the lost and reopen forms)."""
    if not request.htmx:
        return detail_redirect(request, connection_slug, deal_id)
    detail, problem = get_detail(request, connection_slug, deal_id)
    if problem:
        return _state_unavailable(request, connection_slug, deal_id, problem)
    return TemplateResponse(request, f"{DETAIL}#deal-state", detail_context(request, detail))


@require_POST
def change_stage_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return _state_change(request, connection_slug, deal_id, StageForm, services.deal_change_stage)


@require_POST
def mark_won_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return _state_change(request, connection_slug, deal_id, StateChangeForm, services.deal_mark_won)


def _state_form_view(
    request: HttpRequest, connection_slug: str, deal_id: str, state_form: str
) -> HttpResponse:
    require_editor(request)
    if not request.htmx:
        return HttpResponseRedirect(
            detail_url(request, connection_slug, deal_id, action=state_form)
        )
    detail, problem = get_detail(request, connection_slug, deal_id)
    if problem:
        return _state_unavailable(request, connection_slug, deal_id, problem)
    context = detail_context(request, detail, state_form=state_form)
    return TemplateResponse(request, f"{DETAIL}#deal-state", context)


@require_GET
def lose_form_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return _state_form_view(request, connection_slug, deal_id, "lose")


@require_GET
def reopen_form_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return _state_form_view(request, connection_slug, deal_id, "reopen")


@require_POST
def mark_lost_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return _state_change(
        request, connection_slug, deal_id, LostForm, services.deal_mark_lost, "lose"
    )


@require_POST
def reopen_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return _state_change(
        request, connection_slug, deal_id, ReopenForm, services.deal_reopen, "reopen"
    )
