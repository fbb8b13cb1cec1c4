"""The local audit trail: one ``AuditEntry`` per write attempted through DealDesk."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from dealdesk.deals.models import AuditEntry


def audit_json(value: Any) -> Any:
    """A JSON-safe copy of a field value: Decimals as strings, dates as ISO, tuples as lists."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [audit_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): audit_json(item) for key, item in value.items()}
    return str(value)


def audit_change(*, field: str, label: str, old: Any, new: Any) -> dict[str, Any]:
    return {"field": field, "label": label, "old": audit_json(old), "new": audit_json(new)}


def audit_record(
    *,
    user,
    connection_slug: str,
    connection_label: str,
    deal_id: str,
    deal_name: str,
    action: str,
    changes: list[dict[str, Any]],
    outcome: str,
    error_message: str = "",
    request_id: str = "",
    idempotency_key: str = "",
) -> AuditEntry:
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return AuditEntry.objects.create(
        user=user if authenticated else None,
        username=(user.get_username() if authenticated else "") or "anonymous",
        connection_slug=connection_slug,
        connection_label=connection_label[:60],
        deal_id=deal_id[:100],
        deal_name=(deal_name or "")[:300],
        action=action,
        changes=changes,
        outcome=outcome,
        error_message=error_message,
        request_id=(request_id or "")[:100],
        idempotency_key=(idempotency_key or "")[:64],
    )


def audit_succeeded_before(*, connection_slug: str, deal_id: str, idempotency_key: str) -> bool:
    """True when this form submit already went through (a double submit or a replay)."""
    if not idempotency_key:
        return False
    return AuditEntry.objects.filter(
        connection_slug=connection_slug,
        deal_id=deal_id,
        idempotency_key=idempotency_key[:64],
        outcome=AuditEntry.Outcome.SUCCEEDED,
    ).exists()


def audit_created_before(*, connection_slug: str, idempotency_key: str) -> str:
    """The deal a create form with this key already made ("" if none): a double submit."""
    if not idempotency_key:
        return ""
    found = (
        AuditEntry.objects.filter(
            connection_slug=connection_slug,
            action="create",
            idempotency_key=idempotency_key[:64],
            outcome=AuditEntry.Outcome.SUCCEEDED,
        )
        .values_list("deal_id", flat=True)
        .first()
    )
    return found or ""


def audit_history(*, connection_slug: str, deal_id: str) -> list[AuditEntry]:
    """The deal's audit entries, newest first."""
    return list(
        AuditEntry.objects.filter(connection_slug=connection_slug, deal_id=deal_id).order_by(
            "-created_at", "-id"
        )
    )
