"""Display helpers for deals: money, relative times, field values and form input values."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dates import MONTHS_3

from dealdesk.providers.base import Deal, EditableField, Money, humanise

register = template.Library()

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}


def _grouped(amount: Decimal) -> str:
    """``Decimal("-1234.5")`` -> ``-1,234.50`` whatever the active locale."""
    return f"{amount:,.2f}"


@register.filter
def money(value: Money | None) -> str:
    """``Money(50000, "EUR")`` -> ``€50,000.00``; unknown currencies read ``CHF 1,200.00``."""
    if value is None:
        return ""
    try:
        amount = Decimal(value.amount)
    except (InvalidOperation, TypeError, ValueError):
        return f"{value.amount} {value.currency}".strip()
    currency = (value.currency or "").upper()
    sign = "-" if amount < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{_grouped(abs(amount))}"
    return f"{sign}{currency} {_grouped(abs(amount))}".strip()


@register.filter
def deal_value(deal: Deal) -> str:
    """A nodestash amount with its currency, or Stora's free-text estimate verbatim."""
    if deal.value is not None:
        return money(deal.value)
    return deal.value_text or ""


def _aware(value: dt.datetime) -> dt.datetime:
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)


def _day_month_year(value: dt.date) -> str:
    """``date_format(value, "j M Y")`` without its per-call machinery (lists and boards format
    hundreds of dates a page): ``12 Mar 2025``, the month in the active language."""
    return f"{value.day} {MONTHS_3[value.month].title()} {value.year:04d}"


@register.filter
def relative_time(value: dt.datetime | dt.date | None, now: dt.datetime | None = None) -> str:
    """``3 h ago``, ``in 2 days``; older than a month falls back to the date."""
    if value is None:
        return ""
    if not isinstance(value, dt.datetime):
        return _day_month_year(value)
    now = now or timezone.now()
    seconds = int((now - _aware(value)).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now"
    for unit_seconds, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= unit_seconds:
            count = seconds // unit_seconds
            if unit == "day" and count > 30:
                return _day_month_year(timezone.localtime(_aware(value)))
            label = f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
            return f"in {label}" if future else f"{label} ago"
    return "just now"  # pragma: no cover - the loop always returns


@register.filter
def full_time(value: dt.datetime | dt.date | None) -> str:
    """Absolute time for tooltips and the detail page: ``12 Mar 2025, 14:05``."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        local = timezone.localtime(_aware(value))
        return f"{_day_month_year(local)}, {local.hour:02d}:{local.minute:02d}"
    return _day_month_year(value)


@register.filter
def iso(value: dt.datetime | dt.date | None) -> str:
    return value.isoformat() if value is not None else ""


def input_value(kind: str, value: Any) -> str:
    """The string an ``<input>`` of this kind shows for a Python value (also the hidden
    "original" the user saw)."""
    if value is None:
        return ""
    if kind == "tags":
        return ", ".join(str(tag) for tag in value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Money):
        return str(value.amount)
    return str(value)


@register.filter(name="input_value")
def input_value_filter(field: EditableField) -> str:
    return input_value(field.kind, field.value)


@register.filter
def choice_label(field: EditableField) -> str:
    value = "" if field.value is None else str(field.value)
    for choice in field.choices:
        if choice.value == value:
            return choice.label
    return value


@register.filter
def field_text(field: EditableField, deal: Deal | None = None) -> str:
    """How an editable field's current value reads on the page ("" when empty)."""
    value = field.value
    if field.kind == "select":
        return choice_label(field)
    if value is None or value == "" or value == ():
        return ""
    if field.kind == "tags":
        return ", ".join(str(tag) for tag in value)
    if field.kind == "date":
        return full_time(value.date() if isinstance(value, dt.datetime) else value)
    if field.kind == "number":
        currency = deal.value.currency if deal is not None and deal.value else ""
        try:
            return money(Money(Decimal(value), currency)) if currency else _grouped(Decimal(value))
        except (InvalidOperation, TypeError, ValueError):
            return str(value)
    return str(value)


@register.filter
def status_class(status: str) -> str:
    return f"badge-{status}" if status in ("open", "won", "lost") else "badge-other"


@register.filter
def audit_value(value: Any) -> str:
    """An old/new value of an audit change (JSON-safe: lists for tags, ISO dates)."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


@register.filter
def action_label(action: str) -> str:
    """``change_stage`` -> ``Change stage``."""
    return humanise(action)


@register.simple_tag
def new_idempotency_key() -> str:
    """A fresh key for each rendered write form: a double submit of one form acts once."""
    return uuid.uuid4().hex
