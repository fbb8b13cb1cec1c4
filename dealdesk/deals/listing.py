"""The deal list's filters and the words a list page shows for a source that cannot be read.

The list itself is a query over the synced store (``selectors.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dealdesk.deals.problems import problem_kind, problem_words, retry_after
from dealdesk.listtools.filters import (
    DEFAULT_COLUMNS,
    SharpFilters,
    columns_parse,
    columns_query_pairs,
    sharp_filters_parse,
)
from dealdesk.providers.base import STATUSES, ProviderError

SORTS = ("-updated", "updated", "name", "-name", "value", "-value", "close", "-close")


# --- Public dataclasses (re-exported by dealdesk.deals.services) -----------------------------


@dataclass(frozen=True)
class DealFilters:
    q: str = ""  # text search on name, contact, company or site, and tags
    status: str = ""  # "" | open | won | lost
    source: str = ""  # "" | connection slug
    stage: str = ""  # "" | stage id (only meaningful with a single source)
    sort: str = "-updated"  # -updated | updated | name | -name | value | -value
    stale: bool = False  # only open deals idle past their stage's threshold (``stale.py``)
    no_next_step: bool = False  # only open deals whose source keeps activities and has none
    # The sharper filters and the shown columns (``listtools/filters.py``): a value that cannot
    # be used is "" here, and ``filter_problems`` says why.
    owner: str = ""  # "" | "me" | "<connection slug>:<owner id>"
    value_min: str = ""  # a plain decimal amount
    value_max: str = ""
    currency: str = ""  # "" | ISO code the value range applies in
    close_from: str = ""  # expected close date range, ISO dates
    close_to: str = ""
    closing: str = ""  # "" | "month": expected to close this month (moves with the date)
    tags: str = ""  # comma-separated; a deal must carry every one
    cols: tuple[str, ...] = DEFAULT_COLUMNS  # shown columns besides Name

    @classmethod
    def from_querydict(cls, data) -> DealFilters:
        """Tolerant: a missing or unknown value becomes the default."""

        def text(name: str, limit: int) -> str:
            value = data.get(name, "") if data is not None else ""
            return str(value or "").strip()[:limit]

        status = text("status", 10)
        sort = text("sort", 10)
        stale = text("stale", 5).lower() in ("1", "true", "on", "yes")
        no_next_step = text("no_next_step", 5).lower() in ("1", "true", "on", "yes")
        return cls(
            q=text("q", 200),
            status=status if status in STATUSES else "",
            source=_token(text("source", 40)),
            stage=_token(text("stage", 100)),
            sort=sort if sort in SORTS else "-updated",
            stale=stale,
            no_next_step=no_next_step,
            cols=columns_parse(data),
            **vars(sharp_filters_parse(data)[0]),
        )

    @property
    def sharp(self) -> SharpFilters:
        """The sharper filters alone (``listtools/filters.py``)."""
        return SharpFilters(**{name: getattr(self, name) for name in vars(SharpFilters())})

    @property
    def sharp_active(self) -> bool:
        return self.sharp != SharpFilters()

    @property
    def custom_cols(self) -> bool:
        return self.cols != DEFAULT_COLUMNS

    def to_querystring(self, **overrides: Any) -> str:
        """``q=..&status=..``: only the values that differ from the defaults."""
        from django.utils.http import urlencode

        values = dataclasses.replace(self, **overrides)
        defaults = DealFilters()
        pairs = []
        for item in dataclasses.fields(self):
            value = getattr(values, item.name)
            if value == getattr(defaults, item.name):
                continue
            if item.name == "cols":
                pairs.extend(columns_query_pairs(value))
                continue
            pairs.append((item.name, "1" if value is True else value))
        return urlencode(pairs)


def _token(value: str) -> str:
    """Slugs and ids are word characters and dashes; anything else is dropped as unknown."""
    return value if all(c.isalnum() or c in "_-" for c in value) else ""


@dataclass(frozen=True)
class SourceError:
    connection_slug: str
    connection_label: str
    kind: str  # a ``problems.Wording.kind``, or loading | stale for a sync alert
    message: str  # plain words, e.g. "nodestash is unavailable right now."
    retry_after: int | None = None
    # A source still loading into the store: deals so far, and of how many when known.
    progress_done: int | None = None
    progress_total: int | None = None

    @property
    def progress_percent(self) -> int | None:
        if self.progress_done is None or not self.progress_total:
            return None
        return max(0, min(100, round(100 * self.progress_done / self.progress_total)))


def source_error_for(*, slug: str, label: str, error: ProviderError) -> SourceError:
    """The plain words a list page shows for one source that failed (``problems.py``)."""
    return SourceError(
        slug,
        label,
        problem_kind(error),
        problem_words(error, label),
        retry_after=retry_after(error),
    )
