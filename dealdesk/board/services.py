"""The board's one write: a card dropped on a column becomes the matching deal write (change
stage, mark won, mark lost, reopen), so conflicts, audit and rate limits behave exactly as for
a single edit on the deal page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from dealdesk.board.selectors import LOST_COLUMN, WON_COLUMN, empty_columns
from dealdesk.deals import services
from dealdesk.deals.reference import reference_get
from dealdesk.providers.base import LOST, OPEN, WON, ValidationFailed


class MoveRefused(ValidationFailed):
    """A move the board cannot make (no reason for Lost, an unknown column…); nothing is sent."""


def board_move(
    *,
    user: AbstractBaseUser | AnonymousUser,
    connection_slug: str,
    pipeline_id: str,
    deal_id: str,
    target: str,
    reason: str,
    originals: dict[str, Any],
    seen_updated_at: str | None,
    idempotency_key: str,
) -> services.DealDetail:
    """Move a deal into the ``target`` column through the matching service write.

    ``originals`` holds the ``stage`` and ``status`` the card showed: the write is refused as a
    conflict when the deal has changed since, exactly as on the detail page."""
    connection = services.connection_for_slug(connection_slug)
    ref = reference_get(adapter=services.adapter_for_connection(connection))
    pipeline = ref.pipeline(pipeline_id)
    if pipeline is None:
        raise MoveRefused(
            f"{connection.label} has no such pipeline.", connection_label=connection.label
        )
    column = next((c for c in empty_columns(pipeline) if c.id == target), None)
    if column is None:
        raise MoveRefused(
            "Choose one of the board's columns.",
            field_errors={"target": ["Choose one of the board's columns."]},
            connection_label=connection.label,
        )
    write: dict[str, Any] = {
        "user": user,
        "connection_slug": connection_slug,
        "deal_id": deal_id,
        "seen_updated_at": seen_updated_at,
        "idempotency_key": idempotency_key,
        "originals": originals,
    }
    was_closed = originals.get("status") in (WON, LOST)
    synthetic = column.id in (WON_COLUMN, LOST_COLUMN)
    if column.kind == OPEN:
        if was_closed:
            return services.deal_reopen(stage_id=column.id, assignee_id=None, **write)
        return services.deal_change_stage(stage_id=column.id, **write)
    if synthetic and was_closed:
        # A status kept apart from the stage (Stora) only closes an open deal.
        raise MoveRefused(
            f"A {originals['status']} deal cannot move to {column.name} directly: "
            "move it to a stage first to reopen it.",
            connection_label=connection.label,
        )
    if column.kind == WON:
        won_stages = pipeline.stages_of_type(WON)
        if synthetic or (won_stages and won_stages[0].id == column.id):
            return services.deal_mark_won(**write)
        return services.deal_change_stage(stage_id=column.id, **write)
    reason = reason or ("" if synthetic else column.id)
    if not reason:
        raise MoveRefused(
            "Choose why the deal was lost.",
            field_errors={"reason": ["Choose why the deal was lost."]},
            connection_label=connection.label,
        )
    return services.deal_mark_lost(reason=reason, **write)
