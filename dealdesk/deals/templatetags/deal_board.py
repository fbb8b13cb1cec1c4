"""Board and stale helpers for templates: the stale marker, a card's age, ids for the DOM."""

from __future__ import annotations

import datetime as dt

from django import template
from django.template.loader import get_template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from dealdesk.board.fragments import board_columns_html
from dealdesk.board.selectors import Board, BoardColumn, board_cards_load, card_dom_id
from dealdesk.deals.stale import StaleThresholds
from dealdesk.providers.base import Deal

register = template.Library()


@register.simple_tag
def stale_marker(deal: Deal, thresholds: StaleThresholds | None) -> str:
    """A visible "Stale" marker whose accessible label says for how long, or nothing."""
    if thresholds is None:
        return ""
    days = thresholds.idle_days(deal)
    if days is None:
        return ""
    label = f"Stale: not updated for {days} day{'s' if days != 1 else ''}"
    return format_html(
        '<span class="stale" role="img" aria-label="{}" title="{}">Stale</span>', label, label
    )


@register.filter
def age(value: dt.datetime | None) -> str:
    """``5 days``, ``3 h``: how long ago a deal was created."""
    if value is None:
        return "—"
    moment = value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    days = seconds // 86400
    if days:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = seconds // 3600
    return f"{hours} h" if hours else "< 1 h"


@register.filter
def card_id(deal: Deal) -> str:
    return card_dom_id(deal)


@register.simple_tag(takes_context=True)
def cached_board_columns(context: template.Context) -> str:
    """The ``board-columns`` partial, served from the cache when the board did not change
    (``board/fragments.py``); its cards are read from the store only when it is rendered. A
    card asking for a lost reason is one viewer's state: not cached."""
    board: Board = context["board"]

    def render() -> str:
        board_cards_load(board)
        return get_template("deals/board.html#board-columns").render(context.flatten())

    request = getattr(context, "request", None)
    if request is None or context.get("asking_reason_for") or context.get("oob"):
        return render()
    can_edit = bool(context.get("can_edit"))
    return board_columns_html(request, board, can_edit=can_edit, render=render)


@register.simple_tag
def move_target_options(board: Board, column: BoardColumn) -> SafeString:
    """The "Move to" options of the cards in ``column``, built once per column instead of once
    per card (the same for every card of the column, its own column selected)."""
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        (
            (target.id, " selected" if target.id == column.id else "", target.name)
            for target in board.targets()
        ),
    )
