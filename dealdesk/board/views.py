"""The pipeline board page and the card moves it posts (HTTP only; see ``board.py``).

A move answers htmx with a short status message, and the affected columns and the summary chart
re-rendered out of band from a fresh read of the board. A move into Lost without a reason answers
with the card asking for one. Without JavaScript the same forms post normally and get the whole
page back.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from dealdesk.board.chart import pipeline_chart
from dealdesk.board.selectors import (
    CARDS_PER_COLUMN,
    Board,
    PipelineChoice,
    board_column,
    board_get,
    board_pipelines,
    card_dom_id,
    column_id_for,
)
from dealdesk.board.services import MoveRefused, board_move
from dealdesk.deals.announce import announce
from dealdesk.deals.errors import Problem, problem_for, sync_alert_context, with_retry_after
from dealdesk.deals.forms import BoardMoveForm
from dealdesk.deals.roles import can_edit_deals, require_editor
from dealdesk.deals.services import BadDealReference, deal_reference_validate
from dealdesk.providers.base import LOST, ProviderError

BOARD = "deals/board.html"


def _chosen(choices: list[PipelineChoice], value: str) -> PipelineChoice | None:
    return next((c for c in choices if c.value == value), choices[0] if choices else None)


def _board_url(choice_value: str) -> str:
    return reverse("board:board") + "?" + urlencode({"pipeline": choice_value})


def _board_context(request: HttpRequest, board: Board, **extra: Any) -> dict[str, Any]:
    return {
        "cards_per_column": CARDS_PER_COLUMN,
        "board": board,
        "chart": pipeline_chart(board),
        "stale": board.stale,
        "can_edit": can_edit_deals(request.user),
        "board_url": _board_url(board.value),
        "move_url": reverse("board:move"),  # once per board, not per card
        **extra,
    }


@require_GET
def board_view(request: HttpRequest) -> HttpResponse:
    choices, source_errors = board_pipelines()
    chosen = _chosen(choices, request.GET.get("pipeline", ""))
    context: dict[str, Any] = {
        "pipelines": choices,
        "chosen": chosen,
        "source_errors": source_errors,
        "can_edit": can_edit_deals(request.user),
    }
    status = 200
    problem = None
    if chosen is not None:
        context.update(sync_alert_context(request, chosen.connection_slug))
        try:
            board = board_get(
                connection_slug=chosen.connection_slug,
                pipeline_id=chosen.pipeline_id,
                load_cards=False,  # read when the columns are rendered, not when cached
            )
            context.update(_board_context(request, board))
        except ProviderError as error:
            problem = problem_for(request, error, chosen.connection_slug)
            context["problem"] = problem
            status = problem.status
    template = BOARD
    if request.htmx and not request.htmx.history_restore_request:
        template += "#board-body"
    return with_retry_after(TemplateResponse(request, template, context, status=status), problem)


# --- Moves -----------------------------------------------------------------------------------


@require_POST
def board_move_view(request: HttpRequest) -> HttpResponse:
    require_editor(request)
    form = BoardMoveForm(request.POST)
    if not form.is_valid():
        message = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return _move_failed(request, form, Problem(message or "The move was incomplete.", 422))
    data = form.cleaned_data
    try:
        deal_reference_validate(connection_slug=data["connection"], deal_id=data["deal_id"])
    except BadDealReference as error:
        return _move_failed(request, None, Problem(error.message, 400))
    if data["target"] == data["from_column"]:
        return _feedback(request, data, "The deal is already in that column; nothing changed.")
    try:
        if not data["reason"] and _is_lost_column(data):
            return _ask_reason(request, data)
        detail = board_move(
            user=request.user,
            connection_slug=data["connection"],
            pipeline_id=data["pipeline"],
            deal_id=data["deal_id"],
            target=data["target"],
            reason=data["reason"],
            originals=form.originals(),
            seen_updated_at=data["seen_updated_at"],
            idempotency_key=data["idempotency_key"],
        )
    except MoveRefused as error:
        return _move_failed(request, form, Problem(error.message, 422))
    except ProviderError as error:
        return _move_failed(request, form, problem_for(request, error, data["connection"]))
    return _moved(request, data, detail)


def _is_lost_column(data: dict[str, Any]) -> bool:
    column = board_column(
        connection_slug=data["connection"], pipeline_id=data["pipeline"], column_id=data["target"]
    )
    return column is not None and column.kind == LOST


def _read_board(data: dict[str, Any]) -> Board:
    return board_get(connection_slug=data["connection"], pipeline_id=data["pipeline"])


def _ask_reason(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    """The card again, now asking why the deal was lost; nothing was sent upstream."""
    board = _read_board(data)
    deal = next(
        (d for column in board.columns for d in column.deals if d.id == data["deal_id"]), None
    )
    if deal is None:
        problem = Problem("This deal is no longer on this board; reload the board.", 409)
        return _move_failed(request, None, problem, data)
    context = _board_context(
        request,
        board,
        deal=deal,
        column=board.column(column_id_for(deal, board.pipeline)),
        asking_reason_for=deal.id,
        reason_target=board.column(data["target"]),
    )
    if not request.htmx:
        return TemplateResponse(request, BOARD, {**_page_context(request, board), **context})
    response = TemplateResponse(request, f"{BOARD}#card", context)
    return reswap(retarget(response, "#" + card_dom_id(deal)), "outerHTML")


def _page_context(request: HttpRequest, board: Board) -> dict[str, Any]:
    choices, source_errors = board_pipelines()
    return {
        "pipelines": choices,
        "chosen": _chosen(choices, board.value),
        "source_errors": source_errors,
    }


def _moved(request: HttpRequest, data: dict[str, Any], detail) -> HttpResponse:
    deal = detail.deal
    where = deal.stage.name if deal.stage and deal.is_open else deal.status_label
    message = f"Moved “{deal.name or '(no name)'}” to {where}."
    if not request.htmx:
        messages.success(request, message)
        return HttpResponseRedirect(_board_url(f"{data['connection']}:{data['pipeline']}"))
    try:
        board = _read_board(data)
    except ProviderError:
        # Saved upstream, but the columns cannot be redrawn: reload the page rather than
        # leave the card where it no longer is.
        messages.success(request, message)
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    changed = {data["from_column"], data["target"]}
    for column in board.columns:
        if any(d.id == deal.id for d in column.deals):
            changed.add(column.id)
    context = _board_context(
        request,
        board,
        message=message,
        changed_columns=[c for c in board.columns if c.id in changed],
        moved_card=card_dom_id(deal),
    )
    response = TemplateResponse(request, f"{BOARD}#move-saved", context)
    return announce(request, response, message)


def _feedback(request: HttpRequest, data: dict[str, Any], message: str) -> HttpResponse:
    if not request.htmx:
        messages.info(request, message)
        return HttpResponseRedirect(_board_url(f"{data['connection']}:{data['pipeline']}"))
    return TemplateResponse(request, f"{BOARD}#feedback", {"message": message})


def _move_failed(
    request: HttpRequest,
    form: BoardMoveForm | None,
    problem: Problem,
    data: dict[str, Any] | None = None,
) -> HttpResponse:
    """An alert saying why; the card goes back to where it was (``board.js`` puts it back)."""
    data = data or (form.cleaned_data if form is not None else {})
    if request.htmx:
        response = TemplateResponse(
            request, f"{BOARD}#feedback", {"problem": problem}, status=problem.status
        )
        return with_retry_after(response, problem)
    connection, pipeline = data.get("connection"), data.get("pipeline")
    if connection and pipeline:
        try:
            board = board_get(connection_slug=connection, pipeline_id=pipeline)
        except ProviderError:
            board = None
        if board is not None:
            context = {
                **_page_context(request, board),
                **_board_context(request, board, problem=problem),
            }
            response = TemplateResponse(request, BOARD, context, status=problem.status)
            return with_retry_after(response, problem)
    response = TemplateResponse(
        request,
        "deals/error.html",
        {"problem": problem, "retry_url": reverse("board:board")},
        status=problem.status,
    )
    return with_retry_after(response, problem)
