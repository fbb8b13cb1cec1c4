"""The board's columns, rendered once and served from Django's cache until something they show
changes.

Rendering the cards is the board's cost (up to 8 columns x 25 cards, each a move form), while
its reads are cached under the store's version token. So the rendered columns are cached too,
keyed on everything they depend on: the store version (any change to a stored deal), the board
(source and pipeline, its columns' names), whether the viewer may edit (move forms or none), the
stale thresholds, the cards per column, the time zone, the language and today's date. Cards
show ages and stale markers that change as time passes, so an entry lives only until the first
of them would read differently.

What must never be shared is filled in per response: the cached HTML holds placeholders where
the CSRF token and each move form's idempotency key go, and every response gets the request's
own token and a fresh key per form.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from dealdesk.board.selectors import CARDS_PER_COLUMN, Board

# Bump when the board's markup changes in a way the key does not see (a deploy with a shared
# cache); entries also expire after CACHE_TTL seconds whatever happens.
SCHEMA = "1"
CACHE_TTL = 600
HOUR, DAY = 3600, 86400

# Placeholders cannot come from a deal's text: every value the board shows is HTML-escaped,
# so a raw "<" only appears where the template wrote one.
CSRF_PLACEHOLDER = "<!--dealdesk:csrf-token-->"
KEY_PLACEHOLDER = "<!--dealdesk:idempotency-key-->"
_CSRF_VALUE = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*(")')
_KEY_VALUE = re.compile(r'(name="idempotency_key" value=")[^"]*(")')


def cache_key(board: Board, *, can_edit: bool) -> str | None:
    """The key of this board's rendered columns for this kind of viewer, or None when the store
    has no version yet (nothing is cached under it)."""
    if not board.version:
        return None
    stale = board.stale
    parts = [
        SCHEMA,
        board.version,
        board.value,
        board.connection.label,
        "edit" if can_edit else "view",
        str(CARDS_PER_COLUMN),
        timezone.get_current_timezone_name(),  # dates are shown in it
        timezone.localdate().isoformat(),  # anything a card words by day ("due today")
        get_language() or "",
        repr(sorted(stale.by_stage.items())),
        str(stale.default_days),
        # Stage names come from reference data, which refreshes without a new store version.
        repr([(c.id, c.name, c.kind) for c in board.columns]),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"dealdesk:board-columns:{digest}"


def seconds_valid(board: Board, now: dt.datetime) -> int:
    """Seconds until a card's age or stale marker would first read differently (at most
    CACHE_TTL): ages change every hour in their first day, then every day; a stale marker
    appears, and its day count grows, once a day after the deal's last update."""
    soonest = float(CACHE_TTL)
    for column in board.columns:
        for deal in column.deals:
            if deal.created_at is not None:
                elapsed = (now - _aware(deal.created_at)).total_seconds()
                step = HOUR if elapsed < DAY else DAY
                soonest = min(soonest, step - elapsed % step if elapsed >= 0 else HOUR - elapsed)
            stale_change = board.stale.seconds_until_change(deal, now)
            if stale_change is not None:
                soonest = min(soonest, stale_change)
    return max(0, int(soonest))


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt.UTC)


def with_placeholders(html: str) -> str:
    """The rendered columns with the per-response secrets taken out."""
    html = _CSRF_VALUE.sub(rf"\g<1>{CSRF_PLACEHOLDER}\g<2>", html)
    return _KEY_VALUE.sub(rf"\g<1>{KEY_PLACEHOLDER}\g<2>", html)


def fill_placeholders(html: str, request: HttpRequest) -> SafeString:
    """The columns for this response: the request's CSRF token, a fresh key per form."""
    if CSRF_PLACEHOLDER in html:
        html = html.replace(CSRF_PLACEHOLDER, escape(get_token(request)))
    pieces = html.split(KEY_PLACEHOLDER)
    keys = [uuid.uuid4().hex for _ in range(len(pieces) - 1)]
    filled = [piece for pair in zip(pieces, [*keys, ""], strict=True) for piece in pair]
    return mark_safe("".join(filled))  # noqa: S308 (rendered by the template, escaped there)


def board_columns_html(
    request: HttpRequest, board: Board, *, can_edit: bool, render: Callable[[], str]
) -> SafeString:
    """The board's columns from the cache, or ``render()``ed and cached."""
    key = cache_key(board, can_edit=can_edit)
    html = cache.get(key) if key else None
    if not isinstance(html, str):
        html = with_placeholders(render())
        timeout = seconds_valid(board, timezone.now())
        if key and timeout > 0:
            cache.set(key, html, timeout=timeout)
    return fill_placeholders(html, request)
