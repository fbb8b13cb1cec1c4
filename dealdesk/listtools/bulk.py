"""Bulk actions on list rows: change stage, mark lost, reopen.

Every row goes through the same service write as a single edit (``services.deal_*``), one after
the other, with the stage and status the row showed as ``originals``: conflicts, audit entries and
rate limits behave exactly as on the detail page, and each row gets its own outcome.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from dealdesk.board.selectors import lost_reason_choices
from dealdesk.connections.models import Connection
from dealdesk.connections.services import connection_list
from dealdesk.deals import services
from dealdesk.providers.base import Choice, ProviderError, ReferenceData

CHANGE_STAGE, MARK_LOST, REOPEN = "change_stage", "mark_lost", "reopen"
ACTIONS = {CHANGE_STAGE: "Change stage", MARK_LOST: "Mark lost", REOPEN: "Reopen"}
MAX_ROWS = 100


class BulkRefused(Exception):
    """The whole action is refused before anything is sent (e.g. rows of two pipelines).
    ``status`` 400 marks a request no list page sends (a malformed row)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class BulkRow:
    """One selected list row, as the list showed it."""

    connection_slug: str
    deal_id: str
    pipeline_id: str
    stage_id: str
    status: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.connection_slug}:{self.deal_id}"

    @classmethod
    def parse(cls, key: str, state: str) -> BulkRow:
        """``key`` is ``slug:deal id``; ``state`` is ``pipeline|stage|status|name``. Raises
        ``BulkRefused`` (400) for a key that cannot name a deal."""
        slug, _, deal_id = key.partition(":")
        try:
            services.deal_reference_validate(connection_slug=slug, deal_id=deal_id)
        except services.BadDealReference as error:
            raise BulkRefused(
                f"Cannot act on the selected rows: {error.message}", status=400
            ) from None
        pipeline_id, stage_id, status, name = ([*state.split("|", 3), "", "", "", ""])[:4]
        return cls(slug, deal_id, pipeline_id, stage_id, status, name)


@dataclass
class BulkOutcome:
    row: BulkRow
    name: str
    error: ProviderError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ChoiceGroup:
    """One source's pipeline and its options; each value is ``slug:pipeline:choice``."""

    label: str
    choices: tuple[Choice, ...]


@dataclass
class BulkChoices:
    stage_groups: list[ChoiceGroup] = field(default_factory=list)
    reason_groups: list[ChoiceGroup] = field(default_factory=list)


Groups = list[tuple[ChoiceGroup, ChoiceGroup]]
# One connection's groups, built once per reference data: ``sync/store.py`` hands out the same
# ReferenceData object until the reference data is saved again (the entry holds it, so its id
# cannot be reused while the entry lives).
_groups_memo: dict[tuple[object, ...], tuple[ReferenceData, Groups]] = {}


def bulk_choices(listed: services.DealListResult) -> BulkChoices:
    """Stages and lost reasons per source and pipeline, from the reference data the list page
    ``listed`` already used (a source it could not read is left out: the page says so)."""
    result = BulkChoices()
    for connection in listed.connections or connection_list(enabled_only=True):
        ref = listed.reference_for(connection)
        if ref is None:
            continue
        for stage_group, reason_group in _connection_groups(connection, ref):
            result.stage_groups.append(stage_group)
            result.reason_groups.append(reason_group)
    return result


def _connection_groups(connection: Connection, ref: ReferenceData) -> Groups:
    key = (connection.pk, connection.slug, connection.label, connection.provider, id(ref))
    memo = _groups_memo.get(key)
    if memo is not None and memo[0] is ref:
        return memo[1]
    adapter = services.adapter_for_connection(connection)
    groups: Groups = []
    for pipeline in ref.pipelines:
        label = connection.label
        if len(ref.pipelines) > 1 or pipeline.name != connection.label:
            label = f"{connection.label} · {pipeline.name}"
        prefix = f"{connection.slug}:{pipeline.id}:"
        stages = tuple(Choice(prefix + s.id, s.name) for s in pipeline.ordered_stages() if s.id)
        reasons = tuple(
            Choice(prefix + c.value, c.label) for c in lost_reason_choices(adapter, ref, pipeline)
        )
        groups.append((ChoiceGroup(label, stages), ChoiceGroup(label, reasons)))
    if len(_groups_memo) > 64:
        _groups_memo.clear()
    _groups_memo[key] = (ref, groups)
    return groups


def _split_choice(value: str) -> tuple[str, str, str]:
    slug, _, rest = value.partition(":")
    pipeline_id, _, choice = rest.partition(":")
    return slug, pipeline_id, choice


def _row_key(idempotency_key: str, action: str, choice: str, row: BulkRow) -> str:
    """One key per row and action of one rendered form: a double submit acts once per row,
    while another action on the same selection is a new write."""
    seed = f"{idempotency_key}|{action}|{choice}|{row.key}"
    return hashlib.sha256(seed.encode()).hexdigest()[:40]


def bulk_apply(
    *,
    user,
    action: str,
    rows: list[BulkRow],
    choice: str,
    idempotency_key: str,
) -> list[BulkOutcome]:
    """Run ``action`` on each row in turn. ``choice`` is the stage (change stage) or the lost
    reason (mark lost) as ``slug:pipeline:id``. Raises ``BulkRefused`` before any write when
    the selection cannot take the action as a whole."""
    if action not in ACTIONS:
        raise BulkRefused("Choose a bulk action.")
    if not rows:
        raise BulkRefused("Select at least one deal.")
    if len(rows) > MAX_ROWS:
        raise BulkRefused(f"Select at most {MAX_ROWS} deals at once.")
    target_slug, target_pipeline, target = _split_choice(choice)
    if action in (CHANGE_STAGE, MARK_LOST):
        what = "stage" if action == CHANGE_STAGE else "lost reason"
        if not target:
            raise BulkRefused(f"Choose the {what}.")
        pipelines = {(row.connection_slug, row.pipeline_id) for row in rows}
        if len(pipelines) > 1:
            raise BulkRefused(
                f"{ACTIONS[action]} works on deals of one source and pipeline at a time: "
                "the selection mixes several. Filter the list by source first."
            )
        if pipelines != {(target_slug, target_pipeline)}:
            raise BulkRefused(f"Choose a {what} of the selected deals' source and pipeline.")
    outcomes = []
    for row in rows:
        write = {
            "user": user,
            "connection_slug": row.connection_slug,
            "deal_id": row.deal_id,
            "seen_updated_at": None,
            "idempotency_key": _row_key(idempotency_key, action, choice, row),
            "originals": {"stage": row.stage_id or None, "status": row.status or None},
        }
        try:
            if action == CHANGE_STAGE:
                detail = services.deal_change_stage(stage_id=target, **write)
            elif action == MARK_LOST:
                detail = services.deal_mark_lost(reason=target, **write)
            else:
                detail = services.deal_reopen(stage_id=None, assignee_id=None, **write)
        except ProviderError as error:
            outcomes.append(BulkOutcome(row, row.name, error))
            continue
        outcomes.append(BulkOutcome(row, detail.deal.name or row.name))
    return outcomes
