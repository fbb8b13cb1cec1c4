"""The board's pipeline summary: a server-drawn SVG bar chart of deal count and value per column.

No chart library and no JavaScript: this module computes the geometry, the template draws it, and
``description`` says the same in words for screen readers. Values in different currencies are
never added up: each currency gets its own bar, scaled against that currency's largest column.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from dealdesk.board.selectors import Board
from dealdesk.deals.templatetags.deal_format import money
from dealdesk.providers.base import Money

LABEL_WIDTH = 170
BAR_AREA = 330
TEXT_GAP = 8
WIDTH = LABEL_WIDTH + BAR_AREA + 150
BAR_HEIGHT = 14
BAR_GAP = 4
ROW_GAP = 14
TOP = 8


@dataclass(frozen=True)
class Bar:
    kind: str  # "count" | "value"
    x: int
    y: int
    width: int
    height: int
    text: str
    text_x: int
    text_y: int
    tone: int = 0  # value bars: the currency's colour (its place in ``currencies``)


@dataclass(frozen=True)
class ChartRow:
    label: str
    label_y: int
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class PipelineChart:
    title: str
    description: str
    width: int
    height: int
    label_x: int
    rows: tuple[ChartRow, ...]
    currencies: tuple[str, ...]


def _scaled(amount: Decimal | int, largest: Decimal | int) -> int:
    if not largest:
        return 0
    width = int(Decimal(amount) / Decimal(largest) * BAR_AREA)
    return max(width, 2) if amount else 0


def pipeline_chart(board: Board) -> PipelineChart:
    columns = board.columns
    totals = {column.id: {m.currency: m.amount for m in column.totals} for column in columns}
    currencies = tuple(sorted({c for per_column in totals.values() for c in per_column}))
    largest_count = max((column.count for column in columns), default=0)
    largest_value = {
        currency: max(per_column.get(currency, Decimal(0)) for per_column in totals.values())
        for currency in currencies
    }
    rows: list[ChartRow] = []
    sentences: list[str] = []
    y = TOP
    for column in columns:
        bars: list[Bar] = []
        deals = f"{column.count} deal{'s' if column.count != 1 else ''}"
        kinds: list[tuple[str, Decimal | int, Decimal | int, str, int]] = [
            ("count", column.count, largest_count, deals, 0)
        ]
        values: list[str] = []
        for tone, currency in enumerate(currencies):
            amount = totals[column.id].get(currency, Decimal(0))
            text = money(Money(amount, currency))
            kinds.append(("value", amount, largest_value[currency], text, tone))
            if amount:
                values.append(text)
        row_top = y
        for kind, amount, largest, text, tone in kinds:
            width = _scaled(amount, largest)
            bars.append(
                Bar(
                    kind=kind,
                    x=LABEL_WIDTH,
                    y=y,
                    width=width,
                    height=BAR_HEIGHT,
                    text=text,
                    text_x=LABEL_WIDTH + width + TEXT_GAP,
                    text_y=y + BAR_HEIGHT - 3,
                    tone=tone,
                )
            )
            y += BAR_HEIGHT + BAR_GAP
        rows.append(ChartRow(column.name, (row_top + y - BAR_GAP) // 2 + 4, tuple(bars)))
        y += ROW_GAP
        worth = f", worth {' and '.join(values)}" if values else ""
        sentences.append(f"{column.name}: {deals}{worth}.")
    title = f"Pipeline summary: {board.pipeline.name}"
    return PipelineChart(
        title=title,
        description=" ".join(sentences),
        width=WIDTH,
        height=max(y - ROW_GAP + TOP, 40),
        label_x=LABEL_WIDTH - TEXT_GAP,
        rows=tuple(rows),
        currencies=currencies,
    )
