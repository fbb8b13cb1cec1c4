"""The list's sharper filters, columns and close-date sort: owner ("My deals"), value range,
expected close date range ("Closing this month"), tags, and which columns show.

Parsing is tolerant like the rest of ``DealFilters``: a value that cannot be used is dropped
(never applied), and ``filter_problems`` says why in words the page shows next to what was
typed. ``list_filters_q`` turns the parsed values into one database condition over the synced
store (``sync.models.SyncedDeal``); nothing here calls upstream.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q

from dealdesk.connections.models import Connection

# --- Columns -------------------------------------------------------------------------------

# Every column the list can show besides Name (always shown), in table order, with its header.
COLUMNS: dict[str, str] = {
    "source": "Source",
    "stage": "Stage",
    "status": "Status",
    "value": "Value",
    "owner": "Owner",
    "close": "Expected close",
    "tags": "Tags",
    "updated": "Updated",
}
DEFAULT_COLUMNS: tuple[str, ...] = ("source", "stage", "status", "value", "owner", "updated")

OWNER_ME = "me"
CLOSING_MONTH = "month"
MAX_TAGS = 5
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT_LIMIT = Decimal("1e17")  # the store keeps 20 digits, 2 of them decimals


def columns_parse(data: Any) -> tuple[str, ...]:
    """The shown columns from ``cols`` (repeated; an empty ``cols=`` marks a chooser that was
    sent with nothing ticked). Without ``cols`` at all: the default columns."""
    getlist = getattr(data, "getlist", None)
    if getlist is None:
        if data is None or "cols" not in data:
            return DEFAULT_COLUMNS
        raw = data["cols"]
        chosen = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    else:
        if "cols" not in data:
            return DEFAULT_COLUMNS
        chosen = getlist("cols")
    picked = {str(c).strip() for c in chosen}
    return tuple(c for c in COLUMNS if c in picked)


def columns_query_pairs(columns: tuple[str, ...]) -> list[tuple[str, str]]:
    """``cols=&cols=a&cols=b`` for anything but the default: the empty marker keeps "no optional
    column" distinct from "the default columns"."""
    if columns == DEFAULT_COLUMNS:
        return []
    return [("cols", ""), *(("cols", c) for c in columns)]


# --- Parsing the typed values ---------------------------------------------------------------


def parse_amount(text: str) -> Decimal | None:
    """``1,500.50`` or ``1500`` -> ``Decimal``; ``None`` when it is not a plain amount."""
    cleaned = text.replace(",", "").replace(" ", "").replace("\u00a0", "")
    if not cleaned or not re.fullmatch(r"\d+(\.\d{1,2})?", cleaned):
        return None
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        return None
    return amount if amount < _AMOUNT_LIMIT else None


def parse_date(text: str) -> dt.date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def tags_parse(text: str) -> tuple[str, ...]:
    """Comma-separated tags, each trimmed, at most ``MAX_TAGS``, duplicates dropped."""
    seen: dict[str, str] = {}
    for part in text.split(","):
        tag = " ".join(part.split())[:100]
        if tag and tag.casefold() not in seen:
            seen[tag.casefold()] = tag
    return tuple(seen.values())[:MAX_TAGS]


@dataclass(frozen=True)
class SharpFilters:
    """The new filters' usable values (empty strings when unset or unusable)."""

    owner: str = ""
    value_min: str = ""
    value_max: str = ""
    currency: str = ""
    close_from: str = ""
    close_to: str = ""
    closing: str = ""
    tags: str = ""


def _text(data: Any, name: str, limit: int) -> str:
    value = data.get(name, "") if data is not None else ""
    return str(value or "").strip()[:limit]


def _owner(text: str) -> str:
    if text == OWNER_ME:
        return text
    slug, sep, owner_id = text.partition(":")
    ok = sep and slug and owner_id
    return text if ok and all(c.isalnum() or c in "_-:.@" for c in text) else ""


def sharp_filters_parse(data: Any) -> tuple[SharpFilters, dict[str, str]]:
    """The usable values, and a message per field name for what cannot be used."""
    problems: dict[str, str] = {}
    typed_min, typed_max = _text(data, "value_min", 40), _text(data, "value_max", 40)
    low = parse_amount(typed_min) if typed_min else None
    high = parse_amount(typed_max) if typed_max else None
    for name, typed, parsed in (("value_min", typed_min, low), ("value_max", typed_max, high)):
        if typed and parsed is None:
            problems[name] = f"“{typed}” is not an amount: use digits, e.g. 1500 or 1500.50."
    if low is not None and high is not None and low > high:
        problems["value_max"] = "The maximum value is less than the minimum: swap them or fix one."
        low = high = None
    typed_from, typed_to = _text(data, "close_from", 20), _text(data, "close_to", 20)
    start = parse_date(typed_from) if typed_from else None
    end = parse_date(typed_to) if typed_to else None
    for name, typed, day in (("close_from", typed_from, start), ("close_to", typed_to, end)):
        if typed and day is None:
            problems[name] = f"“{typed}” is not a date: use YYYY-MM-DD, e.g. 2026-12-31."
    if start is not None and end is not None and start > end:
        problems["close_to"] = "The end date is before the start date: swap them or fix one."
        start = end = None
    currency = _text(data, "currency", 8).upper()
    closing = _text(data, "closing", 10)
    return (
        SharpFilters(
            owner=_owner(_text(data, "owner", 140)),
            value_min=str(low) if low is not None else "",
            value_max=str(high) if high is not None else "",
            currency=currency if _CURRENCY.match(currency) else "",
            close_from=start.isoformat() if start else "",
            close_to=end.isoformat() if end else "",
            closing=closing if closing == CLOSING_MONTH else "",
            tags=", ".join(tags_parse(_text(data, "tags", 300))),
        ),
        problems,
    )


def filter_problems(data: Any) -> dict[str, str]:
    """What the list page says about typed filter values it could not use."""
    return sharp_filters_parse(data)[1]


# --- The database condition ------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerKey:
    """Who a deal's owner is in one connection: the connection's primary key and the owner id."""

    connection_id: int
    owner_id: str


def month_bounds(today: dt.date) -> tuple[dt.date, dt.date]:
    first = today.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def _tag_q(tag: str) -> Q:
    """Deals carrying ``tag`` (any case), on SQLite and PostgreSQL alike: the JSON list's text
    holds each tag as a JSON string, quotes included, so a quoted match is a whole tag."""
    encoded = json.dumps(tag)  # as SQLite stores it (non-ASCII escaped)
    plain = json.dumps(tag, ensure_ascii=False)  # as PostgreSQL's jsonb prints it
    q = Q(tags__icontains=encoded)
    if plain != encoded:
        q |= Q(tags__icontains=plain)
    return q


def list_filters_q(
    sharp: SharpFilters,
    connections: Iterable[Connection],
    *,
    owner_keys: Iterable[OwnerKey] = (),
    today: dt.date,
) -> Q:
    """One condition for every sharp filter set in ``sharp``. ``owner_keys`` is who "me" is
    (``owner_links_for``); a user linked to nobody matches no deal under "My deals"."""
    where = Q()
    if sharp.owner == OWNER_ME:
        mine = Q(pk__in=[])
        for key in owner_keys:
            mine |= Q(connection_id=key.connection_id, owner_id=key.owner_id)
        where &= mine
    elif sharp.owner:
        slug, _, owner_id = sharp.owner.partition(":")
        by_slug = {c.slug: c.pk for c in connections}
        where &= Q(connection_id=by_slug.get(slug, -1), owner_id=owner_id)
    if sharp.value_min:
        where &= Q(value_amount__gte=Decimal(sharp.value_min))
    if sharp.value_max:
        where &= Q(value_amount__lte=Decimal(sharp.value_max))
    if sharp.currency:
        where &= Q(value_currency=sharp.currency)
    if sharp.closing == CLOSING_MONTH:
        first, last = month_bounds(today)
        where &= Q(expected_close_date__gte=first, expected_close_date__lte=last)
    if sharp.close_from:
        where &= Q(expected_close_date__gte=dt.date.fromisoformat(sharp.close_from))
    if sharp.close_to:
        where &= Q(expected_close_date__lte=dt.date.fromisoformat(sharp.close_to))
    for tag in tags_parse(sharp.tags):
        where &= _tag_q(tag)
    return where


def sharp_cache_scope(
    sharp: SharpFilters, owner_keys: Iterable[OwnerKey], *, today: dt.date
) -> tuple[object, ...]:
    """What a cached list figure depends on among the sharper filters: their values, who "me"
    is (under "My deals"), and the month (under "Closing this month", which moves with it)."""
    mine = (
        sorted((k.connection_id, k.owner_id) for k in owner_keys) if sharp.owner == OWNER_ME else []
    )
    month = month_bounds(today)[0].isoformat() if sharp.closing == CLOSING_MONTH else ""
    return (tuple(vars(sharp).values()), tuple(mine), month)
