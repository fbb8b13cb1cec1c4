"""The pipeline board's reads: one source's pipeline as columns of deal cards.

Columns are the pipeline's stages in order. A pipeline whose stages carry won and lost types
(nodestash, ../shared/api/nodestash.md §8) shows those stages last; a pipeline whose stages are
all open (Stora keeps won/lost in the deal's status, ../shared/api/stora.md §4) gets two extra
columns, "Won" and "Lost". A move between columns is ``services.board_move``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

BOARD_MAX_DEALS = 500  # per board; the page says so when a pipeline holds more
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
    deals: list[Deal] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.deals)

    @property
    def totals(self) -> list[Money]:
        return services.money_totals(self.deals)

    @property
    def dom_id(self) -> str:
        return "column-" + _dom_token(self.id)


@dataclass
class Board:
    connection: services.SourceOption
    pipeline: Pipeline
    columns: list[BoardColumn]
    lost_reasons: tuple[Choice, ...]  # what "Lost reason" offers when a card moves into Lost
    truncated: bool  # more deals than BOARD_MAX_DEALS: only the most recently updated show
    stale: StaleThresholds

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


def column_id_for(deal: Deal, pipeline: Pipeline) -> str:
    """The column a deal sits in on its pipeline's board."""
    stage_ids = {s.id for s in pipeline.stages if s.id}
    stage_id = deal.stage.id if deal.stage else None
    if _has_outcome_stages(pipeline):
        return stage_id if stage_id in stage_ids else OTHER_COLUMN
    if deal.status == WON:
        return WON_COLUMN
    if deal.status == LOST:
        return LOST_COLUMN
    if deal.status == OPEN and stage_id in stage_ids:
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


def board_get(*, connection_slug: str, pipeline_id: str, limit: int = BOARD_MAX_DEALS) -> Board:
    """The board of one pipeline: its deals (at most ``limit``, most recently updated first)
    in columns, from the store. Raises ``ProviderError``; an unknown pipeline is a
    ``NotFound``."""
    connection = services.connection_for_slug(connection_slug)
    adapter = services.adapter_for_connection(connection)
    ref = reference_get(adapter=adapter)
    pipeline = ref.pipeline(pipeline_id)
    if pipeline is None:
        raise services.UnknownConnection(
            f"{connection.label} has no pipeline {pipeline_id!r}.", code="unknown_pipeline"
        )
    deals, truncated = selectors.deals_of_pipeline(
        connection=connection, pipeline_id=pipeline.id, limit=limit
    )
    columns = empty_columns(pipeline)
    other = BoardColumn(OTHER_COLUMN, "Other stages", OTHER_COLUMN)
    by_id = {column.id: column for column in columns}
    for deal in deals:
        by_id.get(column_id_for(deal, pipeline), other).deals.append(deal)
    if other.deals:
        columns.append(other)
    return Board(
        connection=services.source_option(connection),
        pipeline=pipeline,
        columns=columns,
        lost_reasons=lost_reason_choices(adapter, ref, pipeline),
        truncated=truncated,
        stale=stale_thresholds(),
    )


def board_column(*, connection_slug: str, pipeline_id: str, column_id: str) -> BoardColumn | None:
    """One (empty) column of a board, from the cached reference data alone."""
    connection = services.connection_for_slug(connection_slug)
    adapter = services.adapter_for_connection(connection)
    pipeline = reference_get(adapter=adapter).pipeline(pipeline_id)
    if pipeline is None:
        return None
    return next((c for c in empty_columns(pipeline) if c.id == column_id), None)
