"""The filtered list as CSV: every matching deal (not just the page), in the list's order, with
the columns the list shows, streamed row by row.

Cells a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) get a leading apostrophe (OWASP's advice against CSV injection): deal names,
tags and Stora's free-text values come from upstream and anyone with access there can type them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from dealdesk.listtools.filters import COLUMNS
from dealdesk.listtools.selectors import ExportRow

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class _Line:
    """A file-like object whose ``write`` hands back the line ``csv.writer`` wrote."""

    def write(self, value: str) -> str:
        return value


def export_header(columns: Iterable[str]) -> list[str]:
    header = ["Name"]
    for name in columns:
        if name == "value":
            header += ["Value", "Currency", "Value in words"]
        elif name == "updated":
            header.append("Updated (UTC)")
        else:
            header.append(COLUMNS[name])
    return header


def export_cells(row: ExportRow, columns: Iterable[str]) -> list[str]:
    cells = [row.name]
    for name in columns:
        if name == "source":
            cells.append(row.source)
        elif name == "stage":
            cells.append(row.stage)
        elif name == "status":
            cells.append(row.status)
        elif name == "value":
            amount = "" if row.value_amount is None else f"{row.value_amount:.2f}"
            cells += [amount, row.value_currency, row.value_text]
        elif name == "owner":
            cells.append(row.owner)
        elif name == "close":
            cells.append(row.expected_close.isoformat() if row.expected_close else "")
        elif name == "tags":
            cells.append(", ".join(row.tags))
        elif name == "updated":
            cells.append(row.updated_at.strftime("%Y-%m-%d %H:%M:%S") if row.updated_at else "")
    return [csv_safe(cell or "") for cell in cells]


def export_lines(rows: Iterable[ExportRow], columns: tuple[str, ...]) -> Iterator[str]:
    """The CSV, one line at a time: a header, then one line per deal."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(export_header(columns))  # the BOM tells Excel it is UTF-8
    for row in rows:
        yield writer.writerow(export_cells(row, columns))
