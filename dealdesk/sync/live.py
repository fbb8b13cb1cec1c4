"""What open pages follow: the store's change counter (``DealChange``), read without any upstream
call. A page renders the counter's current value; ``static/js/live.js`` asks every few seconds
what changed since, and re-reads its own page (from the store) only when a deal did."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Max
from django.utils import timezone

from dealdesk.sync.models import DealChange

MAX_CHANGES = 200  # more since a page's token: the page is told to refresh everything
CHANGE_MEMORY = dt.timedelta(days=1)


def live_token() -> int:
    return DealChange.objects.aggregate(latest=Max("id"))["latest"] or 0


def live_changes(since: int) -> dict[str, Any]:
    """``{"token", "deals": ["slug:id", …], "overflow"}``: the deals changed after ``since``."""
    latest = live_token()
    if since > latest:  # a token from before the database was reset
        return {"token": latest, "deals": [], "overflow": True}
    if since == latest:  # what an idle page hears every few seconds: one indexed query
        return {"token": latest, "deals": [], "overflow": False}
    rows = list(
        DealChange.objects.filter(id__gt=since)
        .order_by("id")
        .values_list("id", "connection__slug", "upstream_id")[: MAX_CHANGES + 1]
    )
    overflow = len(rows) > MAX_CHANGES or (since and not _known(since))
    token = rows[-1][0] if rows else max(since, 0)
    if overflow:
        token = latest
    keys = list(dict.fromkeys(f"{slug}:{deal_id}" for _, slug, deal_id in rows[:MAX_CHANGES]))
    return {"token": token, "deals": keys, "overflow": bool(overflow)}


def _known(since: int) -> bool:
    """A token older than the pruned rows (or from another database) cannot be followed."""
    oldest = DealChange.objects.order_by("id").values_list("id", flat=True).first()
    return oldest is None or since >= oldest - 1


def live_prune(now: dt.datetime | None = None) -> int:
    """The newest row always stays: the counter never goes back, so open pages' tokens hold."""
    limit = (now or timezone.now()) - CHANGE_MEMORY
    old = DealChange.objects.filter(changed_at__lt=limit).exclude(pk=live_token())
    return old.delete()[0]
