"""New deal: the form of one source (its fields in the vendor's words), the contact and company
search over the synced store, and the create itself (Sales only)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from dealdesk.deals import services
from dealdesk.deals.create_form import DealCreateForm
from dealdesk.deals.errors import error_page, problem_for, with_retry_after
from dealdesk.deals.roles import require_editor
from dealdesk.providers.base import EditableField, ProviderError, ValidationFailed

NEW_DEAL = "deals/new_deal.html"


def _chosen_source(request: HttpRequest, sources: list[services.SourceOption]) -> str:
    asked = request.POST.get("source") or request.GET.get("source") or ""
    slugs = [source.slug for source in sources]
    return asked if asked in slugs else slugs[0]


def _search(new: services.NewDeal, field: EditableField, text: str, picked: str) -> dict:
    """A lookup field's search text, its matches from the store and the value picked."""
    text = " ".join(text.split())[:100]
    options = (
        services.lookup_search(connection_slug=new.connection.slug, lookup=field.lookup, query=text)
        if text
        else []
    )
    return {
        "text": text,
        "options": options,
        "searched": bool(text),
        "picked": picked,
        "picked_label": new.lookup_label(field.lookup, picked),
        "picked_listed": any(option.id == picked for option in options),
    }


def _rows(request: HttpRequest, new: services.NewDeal, form: DealCreateForm) -> list[dict]:
    """Each field with its input and, for a contact or company, its search (the typed text is
    searched again on a re-render, e.g. the no-JavaScript Find)."""
    data = request.POST if request.method == "POST" else request.GET
    rows = []
    for field, bound in form.rows():
        search = None
        if field.lookup:
            picked = str(bound.value() or "")
            search = _search(new, field, data.get(f"{field.name}_search", ""), picked)
        rows.append({"field": field, "bound": bound, "search": search})
    return rows


@require_http_methods(["GET", "POST"])
def deal_new_view(request: HttpRequest) -> HttpResponse:
    require_editor(request)
    sources = services.source_options()
    if not sources:
        return TemplateResponse(request, NEW_DEAL, {"sources": []})
    slug = _chosen_source(request, sources)
    try:
        new = services.deal_create_form(connection_slug=slug)
    except ProviderError as error:
        return error_page(request, problem_for(request, error, slug))
    context: dict[str, Any] = {"sources": sources, "new": new}
    if request.method == "GET" or request.POST.get("find"):
        # A first render, or Find without JavaScript: what was typed stays, unjudged.
        typed = request.POST.dict() if request.method == "POST" else {}
        form = DealCreateForm(new.fields, initial=typed, initial_stage=request.GET.get("stage", ""))
        context.update(form=form, rows=_rows(request, new, form))
        return TemplateResponse(request, NEW_DEAL, context)
    form = DealCreateForm(new.fields, request.POST)
    if form.is_valid():
        try:
            detail = services.deal_create(
                user=request.user,
                connection_slug=slug,
                values=form.values(),
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except ValidationFailed as error:
            form.add_upstream_errors(error.field_errors)
        except ProviderError as error:
            problem = problem_for(request, error, slug)
            context.update(form=form, problem=problem, rows=_rows(request, new, form))
            response = TemplateResponse(request, NEW_DEAL, context, status=problem.status)
            return with_retry_after(response, problem)
        else:
            messages.success(request, f"Deal created in {detail.connection.label}.")
            url = reverse("deals:detail", args=[detail.connection.slug, detail.deal.id])
            return HttpResponseRedirect(url, status=303)
    context.update(form=form, rows=_rows(request, new, form))
    return TemplateResponse(request, NEW_DEAL, context, status=422)


@require_GET
def lookup_view(request: HttpRequest) -> HttpResponse:
    """The matches of a contact or company search as the form's options (htmx)."""
    require_editor(request)
    sources = services.source_options()
    slug = request.GET.get("source", "")
    field_name = request.GET.get("field", "")
    if slug not in {source.slug for source in sources}:
        raise Http404("No such source.")
    new = services.deal_create_form(connection_slug=slug)
    field = next((f for f in new.fields if f.name == field_name and f.lookup), None)
    if field is None:
        raise Http404("No such field.")
    search = _search(
        new, field, request.GET.get(f"{field.name}_search", ""), request.GET.get(field.name, "")
    )
    context = {"new": new, "field": field, "search": search}
    return TemplateResponse(request, f"{NEW_DEAL}#lookup-options", context)
