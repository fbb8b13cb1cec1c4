"""What open pages follow: the store's change counter (``DealChange``), read without any upstream
call. A page renders the counter's current value; ``static/js/live.js`` asks every few seconds
what changed since, and re-reads its own page (from the store) only when a deal did."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.db.models import Max
from django.utils import timezone

from dealdesk.sync.models import DealChange

MAX_CHANGES = 200  # more since a page's token: the page is told to refresh everything
CHANGE_MEMORY = dt.timedelta(days=1)
OWN_CHANGES_HEADER = "X-DealDesk-Live-Own"
MAX_OWN_CHANGES = 100  # a bigger bulk write: the page just refreshes as for anyone's change

_own_changes: ContextVar[dict[str, int] | None] = ContextVar("own_changes", default=None)


def live_token() -> int:
    return DealChange.objects.aggregate(latest=Max("id"))["latest"] or 0


def live_changes(since: int) -> dict[str, Any]:
    """``{"token", "deals": ["slug:id", …], "overflow"}``: the deals changed after ``since``."""
    latest = live_token()
    if since > latest:  # a token from before the database was reset
        return {"token": latest, "deals": [], "overflow": True, "latest": {}}
    if since == latest:  # what an idle page hears every few seconds: one indexed query
        return {"token": latest, "deals": [], "overflow": False, "latest": {}}
    rows = list(
        DealChange.objects.filter(id__gt=since)
        .order_by("id")
        .values_list("id", "connection__slug", "upstream_id")[: MAX_CHANGES + 1]
    )
    overflow = len(rows) > MAX_CHANGES or (since and not _known(since))
    token = rows[-1][0] if rows else max(since, 0)
    if overflow:
        token = latest
    latest_by_key = {f"{slug}:{deal_id}": change for change, slug, deal_id in rows[:MAX_CHANGES]}
    return {
        "token": token,
        "deals": list(latest_by_key),
        "overflow": bool(overflow),
        "latest": latest_by_key,  # each deal's newest change: a page skips its own echo
    }


# --- A page's own writes -----------------------------------------------------------------------


@contextlib.contextmanager
def own_changes_collected() -> Iterator[dict[str, int]]:
    """Collect the changes the store records while one request (a person's write) runs."""
    collected: dict[str, int] = {}
    reset = _own_changes.set(collected)
    try:
        yield collected
    finally:
        _own_changes.reset(reset)


def own_changes_note(changes: list[DealChange]) -> None:
    """Called by the store for the change rows it just wrote (ids set)."""
    collected = _own_changes.get()
    if collected is None:
        return
    for change in changes:
        if change.pk:
            collected[f"{change.connection.slug}:{change.upstream_id}"] = change.pk


def own_changes_header(collected: dict[str, int]) -> str:
    """``slug:id=change,…``: what the writer's page already shows and need not read back."""
    if not collected or len(collected) > MAX_OWN_CHANGES:
        return ""
    return ",".join(f"{key}={change}" for key, change in collected.items())


def _known(since: int) -> bool:
    """A token older than the pruned rows (or from another database) cannot be followed."""
    oldest = DealChange.objects.order_by("id").values_list("id", flat=True).first()
    return oldest is None or since >= oldest - 1


def live_prune(now: dt.datetime | None = None) -> int:
    """The newest row always stays: the counter never goes back, so open pages' tokens hold."""
    limit = (now or timezone.now()) - CHANGE_MEMORY
    old = DealChange.objects.filter(changed_at__lt=limit).exclude(pk=live_token())
    return old.delete()[0]
