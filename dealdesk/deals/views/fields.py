"""Inline field editing on the detail page: the edit form, the value, and the save."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from dealdesk.deals import services
from dealdesk.deals.announce import announce
from dealdesk.deals.errors import Problem, problem_for, with_retry_after
from dealdesk.deals.forms import FieldEditForm, known_field
from dealdesk.deals.pages import (
    DETAIL,
    back_query,
    detail_context,
    detail_redirect,
    detail_url,
    editable_field,
    field_edit_context,
    get_detail,
)
from dealdesk.deals.roles import can_edit_deals, require_editor
from dealdesk.deals.templatetags.deal_format import input_value
from dealdesk.providers.base import Conflict, NotFound, ProviderError


@require_GET
def field_edit_view(
    request: HttpRequest, connection_slug: str, deal_id: str, field_name: str
) -> HttpResponse:
    require_editor(request)
    if not request.htmx:
        return HttpResponseRedirect(detail_url(request, connection_slug, deal_id, edit=field_name))
    detail, problem = get_detail(request, connection_slug, deal_id, need=(field_name,))
    if problem:
        return _field_problem(request, connection_slug, deal_id, field_name, problem)
    field = editable_field(detail, field_name)
    context = field_edit_context(request, detail, field)
    return TemplateResponse(request, f"{DETAIL}#field", context)


@require_GET
def field_display_view(
    request: HttpRequest, connection_slug: str, deal_id: str, field_name: str
) -> HttpResponse:
    if not request.htmx:
        return detail_redirect(request, connection_slug, deal_id)
    detail, problem = get_detail(request, connection_slug, deal_id)
    if problem:
        return _field_problem(request, connection_slug, deal_id, field_name, problem)
    field = editable_field(detail, field_name)
    return TemplateResponse(
        request, f"{DETAIL}#field", detail_context(request, detail, field=field)
    )


def _field_problem(
    request: HttpRequest,
    connection_slug: str,
    deal_id: str,
    field_name: str,
    problem: Problem,
    *,
    keep_typed: bool = False,
) -> HttpResponse:
    """The field block with an alert, when the deal could not even be read. After a failed
    save (``keep_typed``) the form comes back holding what was typed, to save again later."""
    field = known_field(field_name)
    if field is None:
        raise Http404("Unknown field.")
    context = {
        "field": field,
        "field_problem": problem,
        "can_edit": can_edit_deals(request.user),
        "deal": None,
        "connection_slug": connection_slug,
        "deal_id": deal_id,
    }
    template = f"{DETAIL}#field"
    if keep_typed and request.htmx:
        form = FieldEditForm(field, request.POST)
        form.is_valid()
        context.update(
            editing=field_name,
            form=form,
            original_text=request.POST.get("original", ""),
            seen_updated_at=request.POST.get("seen_updated_at", ""),
            back_query=back_query(request),
            history=services.deal_history(connection_slug=connection_slug, deal_id=deal_id),
        )
        template = f"{DETAIL}#field-failed"
    response = TemplateResponse(request, template, context, status=problem.status)
    return with_retry_after(response, problem)


@require_POST
def field_save_view(
    request: HttpRequest, connection_slug: str, deal_id: str, field_name: str
) -> HttpResponse:
    require_editor(request)
    if request.POST.get("cancel"):
        return detail_redirect(request, connection_slug, deal_id)
    field = known_field(field_name)
    if field is None:
        raise Http404("Unknown field.")
    form = FieldEditForm(field, request.POST)
    if not form.is_valid():
        return _field_form_again(request, connection_slug, deal_id, field_name, status=422)
    try:
        detail = services.deal_update(
            user=request.user,
            connection_slug=connection_slug,
            deal_id=deal_id,
            changes=form.changes(),
            originals=form.originals(),
            seen_updated_at=form.cleaned_data["seen_updated_at"],
            idempotency_key=form.cleaned_data["idempotency_key"],
        )
    except NotFound as error:
        raise Http404(error.message) from error
    except Conflict as error:
        return _field_form_again(
            request, connection_slug, deal_id, field_name, status=409, conflict=error
        )
    except ProviderError as error:
        problem: Problem | None = problem_for(request, error, connection_slug)
        field_errors = getattr(error, "field_errors", {})
        upstream_errors = (
            {field_name: field_errors[field_name]} if field_errors.get(field_name) else {}
        )
        if upstream_errors and set(field_errors) == {field_name}:
            problem = None  # the message goes next to the input instead of above the form
        return _field_form_again(
            request,
            connection_slug,
            deal_id,
            field_name,
            status=problem.status if problem else 422,
            problem=problem,
            upstream_errors=upstream_errors,
        )
    if not request.htmx:
        return detail_redirect(request, connection_slug, deal_id)
    field_shown = editable_field(detail, field_name)
    context = detail_context(request, detail, field=field_shown)
    response = TemplateResponse(request, f"{DETAIL}#field-saved", context)
    return announce(request, response, f"{field_shown.label} saved")


def _field_form_again(
    request: HttpRequest,
    connection_slug: str,
    deal_id: str,
    field_name: str,
    *,
    status: int,
    problem: Problem | None = None,
    conflict: Conflict | None = None,
    upstream_errors: dict[str, list[str]] | None = None,
) -> HttpResponse:
    """The edit form again, keeping what was typed, with the reason it did not save.

    The deal is read again for the field's choices and, after a conflict, the current upstream
    value: it becomes the new "original" so "Apply my change anyway" is a deliberate overwrite.
    """
    detail, read_problem = get_detail(request, connection_slug, deal_id)
    if detail is None:
        if problem is None and conflict is not None:  # the refusal is what the user must read
            problem = problem_for(request, conflict, connection_slug)
        return _field_problem(
            request, connection_slug, deal_id, field_name, problem or read_problem, keep_typed=True
        )
    field = editable_field(detail, field_name)
    form = FieldEditForm(field, request.POST)
    form.is_valid()
    for name, messages in (upstream_errors or {}).items():
        for message in messages:
            form.add_error(name if name in form.fields else None, message)
    extra: dict[str, Any] = {"field": field, "editing": field_name, "form": form}
    if conflict is not None:
        extra["conflict"] = conflict
        extra["original_text"] = input_value(field.kind, field.value)
    else:
        extra["original_text"] = request.POST.get("original", "")
        extra["seen_updated_at"] = request.POST.get("seen_updated_at", "")
    extra["field_problem"] = problem
    context = detail_context(request, detail, **extra)
    # The failed attempt is in the audit trail too, so the history refreshes out of band.
    template = f"{DETAIL}#field-failed" if request.htmx else DETAIL
    response = TemplateResponse(request, template, context, status=status)
    return with_retry_after(response, problem)
