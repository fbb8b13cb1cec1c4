"""Deal screens: the list over every source, the detail page and its inline writes.

Views speak HTTP only: parse the request, call one function of ``dealdesk.deals.services``,
render a page or a named partial of it. Upstream failures never become a 500: ``problem_for``
turns each ``ProviderError`` into plain words and a status code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from dealdesk.connections.models import Connection
from dealdesk.deals import services
from dealdesk.deals.forms import (
    FieldEditForm,
    LostForm,
    ReopenForm,
    StageForm,
    StateChangeForm,
    known_field,
)
from dealdesk.deals.list_context import detail_extras, list_extras
from dealdesk.deals.roles import can_edit_deals
from dealdesk.deals.templatetags.deal_format import input_value
from dealdesk.providers.base import (
    AuthenticationFailed,
    Conflict,
    EditableField,
    Forbidden,
    NotFound,
    ProviderError,
    RateLimited,
    Unavailable,
    ValidationFailed,
)

DETAIL = "deals/detail.html"
LIST_KEYS = ("q", "status", "source", "stage", "sort", "stale", "cursor")

# --- Upstream problems in plain words -------------------------------------------------------


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


def _plain_words(error: ProviderError, label: str, fallback: str) -> str:
    """The adapter's message when it wrote one for people (it names the source), else ours."""
    message = (error.message or "").strip()
    if not message or message == type(error).default_message:
        return fallback
    return message if label in message else f"{label}: {message}"


def problem_for(request: HttpRequest, error: ProviderError, connection_slug: str = "") -> Problem:
    label = error.connection_label or "The API"
    if isinstance(error, AuthenticationFailed | Forbidden):
        fallback = (
            f"{label} rejected DealDesk's API key. An admin must update it."
            if isinstance(error, AuthenticationFailed)
            else f"{label}'s API key lacks a permission DealDesk needs. An admin must update it."
        )
        return Problem(
            _plain_words(error, label, fallback),
            502,
            admin_url=connection_admin_url(request, connection_slug),
            source_label=label,
        )
    if isinstance(error, RateLimited):
        wait = error.retry_after_seconds
        when = f"try again in {wait} s" if wait else "try again in a few seconds"
        return Problem(f"{label} is rate-limiting DealDesk: {when}.", 429, wait, source_label=label)
    if isinstance(error, Unavailable):
        text = _plain_words(error, label, f"{label} is unavailable right now.")
        if error.code != services.WRITE_OUTCOME_UNKNOWN:  # that one says what to do already
            text += " Try again in a moment."
        return Problem(text, 503, source_label=label)
    if isinstance(error, NotFound):
        return Problem(f"{label} no longer has this deal.", 404, source_label=label)
    if isinstance(error, ValidationFailed):
        text = _plain_words(error, label, f"{label} refused the change.")
        return Problem(text, 422, source_label=label)
    if isinstance(error, Conflict):
        text = _plain_words(error, label, "The deal changed since you loaded it.")
        return Problem(
            f"{text} Nothing was changed; check the current state.", 409, source_label=label
        )
    text = _plain_words(error, label, f"{label} returned an error.")
    return Problem(text, 502, source_label=label)


def _with_retry_after(response: HttpResponse, problem: Problem | None) -> HttpResponse:
    if problem is not None and problem.retry_after:
        response["Retry-After"] = str(problem.retry_after)
    return response


def _error_page(request: HttpRequest, problem: Problem) -> HttpResponse:
    response = TemplateResponse(
        request,
        "deals/error.html",
        {"problem": problem, "retry_url": request.get_full_path()},
        status=problem.status,
    )
    return _with_retry_after(response, problem)


def _require_editor(request: HttpRequest) -> None:
    if not can_edit_deals(request.user):
        raise PermissionDenied("Only Sales can change deals.")


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


def _page_query(base: str, cursor: str | None) -> str | None:
    """The list querystring for another page; ``None`` when there is no such page."""
    if cursor is None:
        return None
    if not cursor:
        return base
    page = urlencode({"cursor": cursor})
    return f"{base}&{page}" if base else page


@require_GET
def deal_list_view(request: HttpRequest) -> HttpResponse:
    filters = services.DealFilters.from_querydict(request.GET)
    cursor = request.GET.get("cursor") or None
    try:
        result = services.deal_list(
            filters=filters, cursor=cursor, page_size=settings.DEALDESK_PAGE_SIZE
        )
    except ProviderError as error:
        return _error_page(request, problem_for(request, error))
    base_query = filters.to_querystring()
    current_query = _page_query(base_query, cursor or "")
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
        "next_query": _page_query(base_query, result.next_cursor),
        "prev_query": _page_query(base_query, result.prev_cursor),
        "is_filtered": bool(
            filters.q or filters.status or filters.source or filters.stage or filters.stale
        ),
    }
    context.update(list_extras(request, filters, result, current_query))
    template = "deals/list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#list-results"
    return TemplateResponse(request, template, context)


# --- Detail ---------------------------------------------------------------------------------


def _back_query(request: HttpRequest) -> str:
    """The list's querystring passed along as ``?from=`` (only list keys survive)."""
    source = request.GET.get("from") or request.POST.get("from") or ""
    parsed = QueryDict(source)
    kept = QueryDict(mutable=True)
    for key in LIST_KEYS:
        value = parsed.get(key)
        if value:
            kept[key] = value
    return kept.urlencode()


def _detail_context(request: HttpRequest, detail: services.DealDetail, **extra: Any) -> dict:
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
        "back_query": _back_query(request),
        "seen_updated_at": deal.updated_at.isoformat() if deal.updated_at else "",
        "connection_slug": detail.connection.slug,
        "deal_id": deal.id,
    }
    context.update(extra)
    return context


def _get_detail(request: HttpRequest, connection_slug: str, deal_id: str):
    """``(detail, None)`` or ``(None, problem)``; an unknown deal or connection is a 404."""
    try:
        return services.deal_get(connection_slug=connection_slug, deal_id=deal_id), None
    except NotFound as error:
        raise Http404(error.message) from error
    except ProviderError as error:
        return None, problem_for(request, error, connection_slug)


def _field(detail: services.DealDetail, name: str) -> EditableField:
    for field in detail.fields:
        if field.name == name:
            return field
    raise Http404("This field cannot be edited on this deal.")


def _field_edit_context(
    request: HttpRequest, detail: services.DealDetail, field: EditableField, **extra: Any
) -> dict:
    return _detail_context(
        request,
        detail,
        field=field,
        editing=field.name,
        form=FieldEditForm(field),
        original_text=input_value(field.kind, field.value),
        **extra,
    )


@require_GET
def deal_detail_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    detail, problem = _get_detail(request, connection_slug, deal_id)
    if problem:
        return _error_page(request, problem)
    context = _detail_context(request, detail)
    context.update(detail_extras(request, detail.deal, context["back_query"]))
    if context["can_edit"]:
        editing = request.GET.get("edit", "")
        if editing in context["field_names"]:
            context.update(_field_edit_context(request, detail, _field(detail, editing)))
        action = request.GET.get("action", "")
        if action == "lose" and detail.actions.can_lose:
            context["state_form"] = "lose"
        elif action == "reopen" and detail.actions.can_reopen:
            context["state_form"] = "reopen"
    return TemplateResponse(request, DETAIL, context)


def _detail_url(request: HttpRequest, connection_slug: str, deal_id: str, **params: str) -> str:
    """The detail page's URL, keeping the list filters (``from``) and any extra params."""
    url = reverse("deals:detail", args=[connection_slug, deal_id])
    back = _back_query(request)
    query = urlencode({**params, **({"from": back} if back else {})})
    return f"{url}?{query}" if query else url


def _detail_redirect(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return HttpResponseRedirect(_detail_url(request, connection_slug, deal_id))


# --- Inline field editing -------------------------------------------------------------------


@require_GET
def field_edit_view(
    request: HttpRequest, connection_slug: str, deal_id: str, field_name: str
) -> HttpResponse:
    _require_editor(request)
    if not request.htmx:
        return HttpResponseRedirect(_detail_url(request, connection_slug, deal_id, edit=field_name))
    detail, problem = _get_detail(request, connection_slug, deal_id)
    if problem:
        return _field_problem(request, connection_slug, deal_id, field_name, problem)
    field = _field(detail, field_name)
    context = _field_edit_context(request, detail, field)
    return TemplateResponse(request, f"{DETAIL}#field", context)


@require_GET
def field_display_view(
    request: HttpRequest, connection_slug: str, deal_id: str, field_name: str
) -> HttpResponse:
    if not request.htmx:
        return _detail_redirect(request, connection_slug, deal_id)
    detail, problem = _get_detail(request, connection_slug, deal_id)
    if problem:
        return _field_problem(request, connection_slug, deal_id, field_name, problem)
    field = _field(detail, field_name)
    return TemplateResponse(
        request, f"{DETAIL}#field", _detail_context(request, detail, field=field)
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
            back_query=_back_query(request),
            history=services.deal_history(connection_slug=connection_slug, deal_id=deal_id),
        )
        template = f"{DETAIL}#field-failed"
    response = TemplateResponse(request, template, context, status=problem.status)
    return _with_retry_after(response, problem)


@require_POST
def field_save_view(
    request: HttpRequest, connection_slug: str, deal_id: str, field_name: str
) -> HttpResponse:
    _require_editor(request)
    if request.POST.get("cancel"):
        return _detail_redirect(request, connection_slug, deal_id)
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
        return _detail_redirect(request, connection_slug, deal_id)
    context = _detail_context(request, detail, field=_field(detail, field_name))
    return TemplateResponse(request, f"{DETAIL}#field-saved", context)


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
    detail, read_problem = _get_detail(request, connection_slug, deal_id)
    if detail is None:
        return _field_problem(
            request, connection_slug, deal_id, field_name, problem or read_problem, keep_typed=True
        )
    field = _field(detail, field_name)
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
    context = _detail_context(request, detail, **extra)
    # The failed attempt is in the audit trail too, so the history refreshes out of band.
    template = f"{DETAIL}#field-failed" if request.htmx else DETAIL
    response = TemplateResponse(request, template, context, status=status)
    return _with_retry_after(response, problem)


# --- Stage and state changes ----------------------------------------------------------------


def _state_response(
    request: HttpRequest, connection_slug: str, deal_id: str, detail: services.DealDetail
) -> HttpResponse:
    if not request.htmx:
        return _detail_redirect(request, connection_slug, deal_id)
    return TemplateResponse(request, f"{DETAIL}#state-saved", _detail_context(request, detail))


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
    return _with_retry_after(response, problem)


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
    detail, read_problem = _get_detail(request, connection_slug, deal_id)
    if detail is None:
        return _state_unavailable(request, connection_slug, deal_id, problem or read_problem)
    still_possible = {"lose": detail.actions.can_lose, "reopen": detail.actions.can_reopen}
    if not still_possible.get(state_form, False):
        state_form = ""
    context = _detail_context(
        request,
        detail,
        state_problem=problem,
        state_form=state_form,
        state_form_errors=form.errors if form is not None else {},
        state_posted=request.POST,
    )
    template = f"{DETAIL}#state-failed" if request.htmx else DETAIL
    response = TemplateResponse(request, template, context, status=status)
    return _with_retry_after(response, problem)


def _run_state_change(
    request: HttpRequest,
    connection_slug: str,
    deal_id: str,
    form: StateChangeForm,
    state_form: str,
    write,
) -> HttpResponse:
    """Validate, call the service write, answer with the new state or the problem."""
    if not form.is_valid():
        return _state_form_again(
            request, connection_slug, deal_id, status=422, state_form=state_form, form=form
        )
    try:
        detail = write(form)
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
    return _state_response(request, connection_slug, deal_id, detail)


def _write_kwargs(request: HttpRequest, connection_slug: str, deal_id: str, form) -> dict:
    return {
        "user": request.user,
        "connection_slug": connection_slug,
        "deal_id": deal_id,
        "originals": form.originals(),
        "seen_updated_at": form.cleaned_data["seen_updated_at"],
        "idempotency_key": form.cleaned_data["idempotency_key"],
    }


@require_GET
def state_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    """The #deal-state region on its own (Cancel of the lost and reopen forms)."""
    if not request.htmx:
        return _detail_redirect(request, connection_slug, deal_id)
    detail, problem = _get_detail(request, connection_slug, deal_id)
    if problem:
        return _state_unavailable(request, connection_slug, deal_id, problem)
    return TemplateResponse(request, f"{DETAIL}#deal-state", _detail_context(request, detail))


@require_POST
def change_stage_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    _require_editor(request)
    form = StageForm(request.POST)
    return _run_state_change(
        request,
        connection_slug,
        deal_id,
        form,
        "",
        lambda form: services.deal_change_stage(
            stage_id=form.cleaned_data["stage"],
            **_write_kwargs(request, connection_slug, deal_id, form),
        ),
    )


@require_POST
def mark_won_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    _require_editor(request)
    form = StateChangeForm(request.POST)
    return _run_state_change(
        request,
        connection_slug,
        deal_id,
        form,
        "",
        lambda form: services.deal_mark_won(
            **_write_kwargs(request, connection_slug, deal_id, form)
        ),
    )


def _state_form_view(
    request: HttpRequest, connection_slug: str, deal_id: str, state_form: str
) -> HttpResponse:
    _require_editor(request)
    if not request.htmx:
        return HttpResponseRedirect(
            _detail_url(request, connection_slug, deal_id, action=state_form)
        )
    detail, problem = _get_detail(request, connection_slug, deal_id)
    if problem:
        return _state_unavailable(request, connection_slug, deal_id, problem)
    context = _detail_context(request, detail, state_form=state_form)
    return TemplateResponse(request, f"{DETAIL}#deal-state", context)


@require_GET
def lose_form_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return _state_form_view(request, connection_slug, deal_id, "lose")


@require_GET
def reopen_form_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    return _state_form_view(request, connection_slug, deal_id, "reopen")


@require_POST
def mark_lost_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    _require_editor(request)
    if request.POST.get("cancel"):
        return _detail_redirect(request, connection_slug, deal_id)
    form = LostForm(request.POST)
    return _run_state_change(
        request,
        connection_slug,
        deal_id,
        form,
        "lose",
        lambda form: services.deal_mark_lost(
            reason=form.cleaned_data["reason"],
            **_write_kwargs(request, connection_slug, deal_id, form),
        ),
    )


@require_POST
def reopen_view(request: HttpRequest, connection_slug: str, deal_id: str) -> HttpResponse:
    _require_editor(request)
    if request.POST.get("cancel"):
        return _detail_redirect(request, connection_slug, deal_id)
    form = ReopenForm(request.POST)
    return _run_state_change(
        request,
        connection_slug,
        deal_id,
        form,
        "reopen",
        lambda form: services.deal_reopen(
            stage_id=form.cleaned_data["stage"],
            assignee_id=form.cleaned_data["assignee"],
            **_write_kwargs(request, connection_slug, deal_id, form),
        ),
    )
