"""The pipeline board's reads: one source's pipeline as columns of deal cards.

Columns are the pipeline's stages in order. A pipeline whose stages carry won and lost types
(nodestash, ../shared/api/nodestash.md §8) shows those stages last; a pipeline whose stages are
all open (Stora keeps won/lost in the deal's status, ../shared/api/stora.md §4) gets two extra
columns, "Won" and "Lost". A move between columns is ``services.board_move``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q

from dealdesk.connections.services import connection_list
from dealdesk.deals import selectors, services
from dealdesk.deals.listing import SourceError, source_error_for
from dealdesk.deals.reference import reference_get
from dealdesk.deals.stale import StaleThresholds, stale_thresholds
from dealdesk.providers.base import (
    LOST,
    OPEN,
    WON,
    Choice,
    Deal,
    Money,
    Pipeline,
    Provider,
    ProviderError,
    ReferenceData,
)
from dealdesk.sync.store import store_version

CARDS_PER_COLUMN = 25  # the newest cards of a column; its count and totals cover them all
WON_COLUMN, LOST_COLUMN, OTHER_COLUMN = "won", "lost", "other"


@dataclass(frozen=True)
class PipelineChoice:
    value: str  # "<connection slug>:<pipeline id>", the board's ?pipeline= value
    connection_slug: str
    pipeline_id: str
    label: str  # "nodestash · Sales"


@dataclass
class BoardColumn:
    id: str  # a stage id, or WON_COLUMN / LOST_COLUMN / OTHER_COLUMN
    name: str
    kind: str  # open | won | lost | other
    deals: list[Deal] = field(default_factory=list)  # the cards shown, newest first
    total_count: int | None = None  # every deal in the column, when read from the store
    money: list[Money] | None = None  # their values per currency

    @property
    def count(self) -> int:
        return self.total_count if self.total_count is not None else len(self.deals)

    @property
    def totals(self) -> list[Money]:
        return self.money if self.money is not None else services.money_totals(self.deals)

    @property
    def hidden_count(self) -> int:
        """Deals in the column beyond the cards shown (the list shows them all)."""
        return max(0, self.count - len(self.deals))

    @property
    def dom_id(self) -> str:
        return "column-" + _dom_token(self.id)


@dataclass
class Board:
    connection: services.SourceOption
    pipeline: Pipeline
    columns: list[BoardColumn]
    lost_reasons: tuple[Choice, ...]  # what "Lost reason" offers when a card moves into Lost
    truncated: bool  # a column holds more deals than it shows cards for
    stale: StaleThresholds
    version: str = ""  # the store version the board was read under ("" when never stored)
    # Each column's cards as store rows, until ``board_cards_load`` reads them (a board whose
    # rendered columns come from the cache never needs them).
    card_ids: dict[str, list[int]] = field(default_factory=dict)
    cards_loaded: bool = True

    @property
    def value(self) -> str:
        return f"{self.connection.slug}:{self.pipeline.id}"

    @property
    def deal_count(self) -> int:
        return sum(column.count for column in self.columns)

    def column(self, column_id: str) -> BoardColumn | None:
        return next((c for c in self.columns if c.id == column_id), None)

    def targets(self) -> list[BoardColumn]:
        """Columns a card can be moved into (not the catch-all for unknown stages)."""
        return [c for c in self.columns if c.kind != OTHER_COLUMN]


def _dom_token(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in value)


def card_dom_id(deal: Deal) -> str:
    return "card-" + _dom_token(deal.id)


# --- Columns ---------------------------------------------------------------------------------


def _has_outcome_stages(pipeline: Pipeline) -> bool:
    return any(stage.type in (WON, LOST) for stage in pipeline.stages)


def empty_columns(pipeline: Pipeline) -> list[BoardColumn]:
    stages = [s for s in pipeline.ordered_stages() if s.id]
    if _has_outcome_stages(pipeline):
        ordered = (
            [s for s in stages if s.type == OPEN]
            + [s for s in stages if s.type == WON]
            + [s for s in stages if s.type == LOST]
        )
        return [
            BoardColumn(s.id or "", s.name, s.type) for s in ordered if s.type in (OPEN, WON, LOST)
        ]
    return [
        *(BoardColumn(s.id or "", s.name, OPEN) for s in stages),
        BoardColumn(WON_COLUMN, "Won", WON),
        BoardColumn(LOST_COLUMN, "Lost", LOST),
    ]


def column_filter(column: BoardColumn, pipeline: Pipeline) -> Q:
    """The stored deals that sit in ``column`` (the same rule as ``column_id_for``)."""
    stage_ids = [s.id for s in pipeline.stages if s.id]
    if _has_outcome_stages(pipeline):
        if column.id == OTHER_COLUMN:
            return ~Q(stage_id__in=stage_ids)
        return Q(stage_id=column.id)
    if column.id == WON_COLUMN:
        return Q(status=WON)
    if column.id == LOST_COLUMN:
        return Q(status=LOST)
    if column.id == OTHER_COLUMN:
        return ~Q(status__in=(WON, LOST)) & ~(Q(status=OPEN) & Q(stage_id__in=stage_ids))
    return Q(status=OPEN, stage_id=column.id)


def column_id_for(deal: Deal, pipeline: Pipeline) -> str:
    """The column a deal sits in on its pipeline's board."""
    return column_id_of(deal.status, deal.stage.id if deal.stage else None, pipeline)


def column_id_of(status: str, stage_id: str | None, pipeline: Pipeline) -> str:
    """The column of a deal with this status and stage (the same rule as ``column_filter``)."""
    stage_ids = {s.id for s in pipeline.stages if s.id}
    if _has_outcome_stages(pipeline):
        return stage_id if stage_id and stage_id in stage_ids else OTHER_COLUMN
    if status == WON:
        return WON_COLUMN
    if status == LOST:
        return LOST_COLUMN
    if status == OPEN and stage_id and stage_id in stage_ids:
        return stage_id
    return OTHER_COLUMN  # a deleted stage or a status DealDesk does not know


def lost_reason_choices(
    adapter: Provider, ref: ReferenceData, pipeline: Pipeline
) -> tuple[Choice, ...]:
    """The reasons the detail page offers for an open deal of this pipeline."""
    return adapter.lost_choices(pipeline, ref=ref)


# --- Reads -----------------------------------------------------------------------------------


def board_pipelines() -> tuple[list[PipelineChoice], list[SourceError]]:
    """Every pipeline of every enabled connection (reference data, usually cached)."""
    choices: list[PipelineChoice] = []
    errors: list[SourceError] = []
    for connection in connection_list(enabled_only=True):
        try:
            ref = reference_get(adapter=services.adapter_for_connection(connection))
        except ProviderError as error:
            errors.append(
                source_error_for(slug=connection.slug, label=connection.label, error=error)
            )
            continue
        for pipeline in ref.pipelines:
            label = connection.label
            if len(ref.pipelines) > 1 or pipeline.name != connection.label:
                label = f"{connection.label} · {pipeline.name}"
            choices.append(
                PipelineChoice(
                    f"{connection.slug}:{pipeline.id}", connection.slug, pipeline.id, label
                )
            )
    return choices, errors


def board_get(
    *,
    connection_slug: str,
    pipeline_id: str,
    cards: int = CARDS_PER_COLUMN,
    load_cards: bool = True,
) -> Board:
    """The board of one pipeline from the store: each column's newest ``cards`` deals, with
    its count and totals over all of its deals. Raises ``ProviderError``; an unknown pipeline is
    a ``NotFound``. With ``load_cards=False`` the cards are read by ``board_cards_load``."""
    connection = services.connection_for_slug(connection_slug)
    adapter = services.adapter_for_connection(connection)
    ref = reference_get(adapter=adapter)
    pipeline = ref.pipeline(pipeline_id)
    if pipeline is None:
        raise services.UnknownConnection(
            f"{connection.label} has no pipeline {pipeline_id!r}.", code="unknown_pipeline"
        )
    columns = [*empty_columns(pipeline), BoardColumn(OTHER_COLUMN, "Other stages", OTHER_COLUMN)]
    by_id = {column.id: column for column in columns}
    counts: dict[str, int] = {}
    sums: dict[str, dict[str, Decimal]] = {}
    version = store_version()
    for group in selectors.pipeline_groups(
        connection=connection, pipeline_id=pipeline.id, version=version
    ):
        column_id = column_id_of(group.status, group.stage_id, pipeline)
        counts[column_id] = counts.get(column_id, 0) + group.count
        if group.total is not None and group.currency:
            per_currency = sums.setdefault(column_id, {})
            per_currency[group.currency] = per_currency.get(group.currency, Decimal(0)) + Decimal(
                group.total
            )
    card_ids: dict[str, list[int]] = {}
    for column_id, column in by_id.items():
        column.total_count = counts.get(column_id, 0)
        column.money = [
            Money(amount, cur) for cur, amount in sorted(sums.get(column_id, {}).items())
        ]
        if column.total_count:
            card_ids[column_id] = selectors.pipeline_card_ids(
                connection=connection,
                pipeline_id=pipeline.id,
                where=column_filter(column, pipeline),
                cards=cards,
                version=version,
            )
    if not columns[-1].count:
        columns.pop()  # no deal in a deleted stage or an unknown status
    truncated = any(column.count > len(card_ids.get(column.id, [])) for column in columns)
    board = Board(
        connection=services.source_option(connection),
        pipeline=pipeline,
        columns=columns,
        lost_reasons=lost_reason_choices(adapter, ref, pipeline),
        truncated=truncated,
        stale=stale_thresholds(),
        version=version,
        card_ids=card_ids,
        cards_loaded=False,
    )
    if load_cards:
        board_cards_load(board)
    return board


def board_cards_load(board: Board) -> None:
    """Every column's cards in one read of the store (once)."""
    if board.cards_loaded:
        return
    deals = selectors.deals_by_row_id(pk for ids in board.card_ids.values() for pk in ids)
    for column in board.columns:
        column.deals = [deals[pk] for pk in board.card_ids.get(column.id, []) if pk in deals]
    board.cards_loaded = True


def board_column(*, connection_slug: str, pipeline_id: str, column_id: str) -> BoardColumn | None:
    """One (empty) column of a board, from the cached reference data alone."""
    connection = services.connection_for_slug(connection_slug)
    adapter = services.adapter_for_connection(connection)
    pipeline = reference_get(adapter=adapter).pipeline(pipeline_id)
    if pipeline is None:
        return None
    return next((c for c in empty_columns(pipeline) if c.id == column_id), None)
