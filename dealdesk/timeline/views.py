"""Add note, Add task and Mark done on the deal page (Sales only). An htmx request gets the
timeline's regions back (the forms, and the history list out of band); a plain POST gets a
redirect to the deal page, so the forms work without JavaScript."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from dealdesk.deals.announce import announce
from dealdesk.deals.errors import Problem, error_page, problem_for, with_retry_after
from dealdesk.deals.pages import DETAIL, detail_context, detail_redirect, get_detail
from dealdesk.deals.roles import require_editor
from dealdesk.providers.base import NotFound, ProviderError, ValidationFailed
from dealdesk.timeline import services
from dealdesk.timeline.forms import CompleteForm, NoteForm, TaskForm
from dealdesk.timeline.services import NO_ACTIVITIES

ADD_FORMS = "timeline/add.html"
ADD_SAVED = "timeline/add_saved.html"
DONE_SAVED = "timeline/done_saved.html"  # History, and the next step out of band
HISTORY = f"{DETAIL}#history"
NOTE_IDS = "note-%s"
TASK_IDS = "task-%s"


def _page(
    request: HttpRequest,
    connection_slug: str,
    deal_id: str,
    template: str,
    *,
    status: int = 200,
    problem: Problem | None = None,
    **extra: Any,
) -> HttpResponse:
    """The deal read from the store, with the timeline's forms and messages in ``extra``. A
    problem shows where the user acted: above the forms, or above the history (Mark done)."""
    detail, read_problem = get_detail(request, connection_slug, deal_id)
    if detail is None:
        return error_page(request, problem or read_problem)
    where = "history_problem" if template == HISTORY else "timeline_problem"
    context = detail_context(request, detail, **{where: problem}, **extra)
    response = TemplateResponse(
        request, template if request.htmx else DETAIL, context, status=status
    )
    return with_retry_after(response, problem)


def _add(
    request: HttpRequest,
    connection_slug: str,
    deal_id: str,
    form: NoteForm | TaskForm,
    form_name: str,
    write: Callable[[dict[str, Any]], object],
    done_words: str,
) -> HttpResponse:
    require_editor(request)
    forms: dict[str, Form] = {form_name: form}
    if not form.is_valid():
        return _page(request, connection_slug, deal_id, ADD_FORMS, status=400, **forms)
    try:
        write(form.cleaned_data)
    except NotFound as error:
        raise Http404(error.message) from error
    except ValidationFailed as error:
        if error.code == NO_ACTIVITIES:  # no form is offered for such a source
            raise Http404(error.message) from error
        elsewhere = []  # what points at no field of this form goes above it, with the why
        for name, errors in error.field_errors.items():
            if name in form.fields:
                form.add_error(name, errors)
            else:
                elsewhere += [text for text in errors if text not in error.message]
        if elsewhere or not error.field_errors:
            form.add_error(None, " ".join([error.message, *elsewhere]))
        return _page(request, connection_slug, deal_id, ADD_FORMS, status=400, **forms)
    except ProviderError as error:
        problem = problem_for(request, error, connection_slug)
        return _page(
            request,
            connection_slug,
            deal_id,
            ADD_FORMS,
            status=problem.status,
            problem=problem,
            **forms,
        )
    if not request.htmx:
        messages.success(request, done_words)
        return detail_redirect(request, connection_slug, deal_id)
    response = _page(request, connection_slug, deal_id, ADD_SAVED, timeline_saved=done_words)
    return announce(request, response, done_words)


@require_POST
def add_note_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    def write(data: dict[str, Any]) -> object:
        return services.activity_add_note(
            user=request.user,
            connection_slug=connection_slug,
            deal_id=deal_id,
            subject=data["subject"],
            body=data["body"] or None,
            idempotency_key=data["idempotency_key"],
        )

    form = NoteForm(request.POST, auto_id=NOTE_IDS)
    return _add(request, connection_slug, deal_id, form, "note_form", write, "Note added.")


@require_POST
def add_task_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    def write(data: dict[str, Any]) -> object:
        return services.activity_add_task(
            user=request.user,
            connection_slug=connection_slug,
            deal_id=deal_id,
            subject=data["subject"],
            due_date=data["due_date"],
            idempotency_key=data["idempotency_key"],
        )

    form = TaskForm(request.POST, auto_id=TASK_IDS)
    return _add(request, connection_slug, deal_id, form, "task_form", write, "Task added.")


@require_POST
def complete_view(
    request: HttpRequest, connection_slug: str, deal_id: str, activity_id: str
) -> HttpResponse:
    require_editor(request)
    form = CompleteForm(request.POST)
    if not form.is_valid():
        problem = Problem("This form is out of date: reload the deal and try again.", 400)
        return _page(request, connection_slug, deal_id, HISTORY, status=400, problem=problem)
    try:
        services.activity_complete(
            user=request.user,
            connection_slug=connection_slug,
            deal_id=deal_id,
            activity_id=activity_id,
            idempotency_key=form.cleaned_data["idempotency_key"],
        )
    except ProviderError as error:
        if isinstance(error, NotFound):  # htmx swaps no 404: say it in the timeline instead
            problem = Problem(error.message, 409)
        else:
            problem = problem_for(request, error, connection_slug)
        if not request.htmx:
            messages.error(request, problem.message)
            return detail_redirect(request, connection_slug, deal_id)
        return _page(
            request, connection_slug, deal_id, HISTORY, status=problem.status, problem=problem
        )
    if not request.htmx:
        messages.success(request, "Marked done.")
        return detail_redirect(request, connection_slug, deal_id)
    response = _page(request, connection_slug, deal_id, DONE_SAVED, timeline_saved="Marked done.")
    return announce(request, response, "Marked done.")
