"""The deal list's rows, rendered once and served from Django's cache while nothing they show
changes.

Rendering a page of rows (each a link, value, next step, stale marker and relative time) is most
of a list page's cost, while its reads are already cached under the store's version token. The
rows hold nothing per viewer: the bulk checkboxes point at the bulk form, which carries the CSRF
token and idempotency key outside them. So the rendered rows are cached under a key made of what
they show: every deal of the page (the store's version and the page's row ids, as the list read
them, or else each deal in full, its ``repr``) and what the page adds (the columns shown,
whether rows carry bulk checkboxes, the list's query that row links carry back, the stale
thresholds, the time zone, language and today's date). An entry lives only until the first
"Updated" time or stale marker would read differently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

from django.core.cache import cache
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from dealdesk.deals.stale import StaleThresholds
from dealdesk.providers.base import Deal

# Bump when the rows' markup changes in a way the key does not see (a deploy with a shared
# cache); entries also expire after CACHE_TTL seconds whatever happens.
SCHEMA = "1"
CACHE_TTL = 600
MINUTE, HOUR, DAY = 60, 3600, 86400


def cache_key(
    deals: Iterable[Deal],
    *,
    shown: Mapping[str, bool],
    bulk: bool,
    current_query: str,
    stale: StaleThresholds | None,
    content_token: str = "",
) -> str:
    """``content_token`` stands for the deals when given (the store's version and the page's row
    ids: ``DealListResult.content_token``); otherwise every deal is part of the key in full."""
    content = [content_token] if content_token else [repr(deal) for deal in deals]
    parts = [
        SCHEMA,
        repr(sorted(shown.items())),
        "bulk" if bulk else "",
        current_query,
        repr(sorted(stale.by_stage.items())) if stale else "",
        str(stale.default_days) if stale else "",
        timezone.get_current_timezone_name(),
        timezone.localdate().isoformat(),  # next steps word the day ("Due today", "Overdue")
        get_language() or "",
        *content,
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"dealdesk:list-rows:{digest}"


def seconds_valid(deals: Iterable[Deal], stale: StaleThresholds | None, now: dt.datetime) -> int:
    """Seconds until a row's "Updated" time or stale marker would first read differently (at
    most CACHE_TTL): "just now" and minutes change every minute in the first hour, hours every
    hour in the first day, then days every day."""
    soonest = float(CACHE_TTL)
    for deal in deals:
        if deal.updated_at is not None:
            updated = deal.updated_at
            updated = updated if timezone.is_aware(updated) else updated.replace(tzinfo=dt.UTC)
            elapsed = (now - updated).total_seconds()
            if elapsed < 0:  # "in 3 min": a clock ahead of ours; not worth caching
                return 0
            step = MINUTE if elapsed < HOUR else HOUR if elapsed < DAY else DAY
            soonest = min(soonest, step - elapsed % step)
        change = stale.seconds_until_change(deal, now) if stale else None
        if change is not None:
            soonest = min(soonest, change)
    return max(0, int(soonest))


def rows_html(
    deals: Sequence[Deal],
    *,
    shown: Mapping[str, bool],
    bulk: bool,
    current_query: str,
    stale: StaleThresholds | None,
    render: Callable[[], str],
    content_token: str = "",
) -> SafeString:
    """The rows from the cache, or ``render()``ed and cached."""
    key = cache_key(
        deals,
        shown=shown,
        bulk=bulk,
        current_query=current_query,
        stale=stale,
        content_token=content_token,
    )
    html = cache.get(key)
    if not isinstance(html, str):
        html = render()
        timeout = seconds_valid(deals, stale, timezone.now())
        if timeout > 0:
            cache.set(key, html, timeout=timeout)
    return mark_safe(html)  # noqa: S308 (rendered by the template, escaped there)
