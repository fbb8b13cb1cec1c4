"""Stale deals: an open deal not updated for longer than its stage's threshold.

Thresholds are ``StageSetting`` rows an admin edits (default
``StageSetting.DEFAULT_STALE_AFTER_DAYS`` days). They are read once per request in the main
thread, then checked without the database, so the listing's worker threads can use them too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from dealdesk.deals.models import StageSetting
from dealdesk.providers.base import Deal

CACHE_KEY = "dealdesk:stale-thresholds"
CACHE_TTL = 300
DAY_SECONDS = 86400


@dataclass(frozen=True)
class StaleThresholds:
    """Days per ``(connection_slug, stage_id)``; every other stage uses ``default_days``."""

    by_stage: dict[tuple[str, str], int] = field(default_factory=dict)
    default_days: int = StageSetting.DEFAULT_STALE_AFTER_DAYS

    def days_for(self, deal: Deal) -> int:
        stage_id = deal.stage.id if deal.stage else None
        return self.by_stage.get((deal.connection_slug, stage_id or ""), self.default_days)

    def idle_days(self, deal: Deal, now: dt.datetime | None = None) -> int | None:
        """Whole days since the deal's last update when it is stale, else ``None``. Closed deals
        are never stale."""
        idle = _idle(deal, now or dt.datetime.now(dt.UTC))
        if idle is None or idle <= dt.timedelta(days=self.days_for(deal)):
            return None
        return idle.days

    def seconds_until_change(self, deal: Deal, now: dt.datetime) -> float | None:
        """Seconds until the deal's stale marker would first read differently (it appears, or
        its day count grows), or ``None`` when it never will (a closed deal)."""
        idle_delta = _idle(deal, now)
        if idle_delta is None:
            return None
        idle = idle_delta.total_seconds()
        stale_after = self.days_for(deal) * DAY_SECONDS
        # +1: a deal turns stale just after its threshold (``idle_days``)
        return stale_after - idle + 1 if idle <= stale_after else DAY_SECONDS - idle % DAY_SECONDS

    def is_stale(self, deal: Deal, now: dt.datetime | None = None) -> bool:
        return self.idle_days(deal, now) is not None


def _idle(deal: Deal, now: dt.datetime) -> dt.timedelta | None:
    """How long an open deal has gone without an update; None for a closed one (never stale)."""
    if not deal.is_open or deal.updated_at is None:
        return None
    updated = deal.updated_at
    return now - (updated if updated.tzinfo else updated.replace(tzinfo=dt.UTC))


def stale_thresholds() -> StaleThresholds:
    """Every stage setting, cached until one is saved or deleted."""
    cached = cache.get(CACHE_KEY)
    if isinstance(cached, StaleThresholds):
        return cached
    thresholds = StaleThresholds(
        by_stage={
            (row.connection_slug, row.stage_id): row.stale_after_days
            for row in StageSetting.objects.all()
        }
    )
    cache.set(CACHE_KEY, thresholds, timeout=CACHE_TTL)
    return thresholds


@receiver(post_save, sender=StageSetting)
@receiver(post_delete, sender=StageSetting)
def _forget_thresholds(**_kwargs) -> None:
    cache.delete(CACHE_KEY)


@dataclass(frozen=True)
class StageCatalogue:
    """Every stage of every enabled connection, for the admin's "Stage" select."""

    choices: list[tuple[str, str]]  # ("<connection slug>|<stage id>", "Stora · New enquiry")
    names: dict[str, str]  # the same values -> the stage's name
    unreadable: list[str]  # labels of connections whose stages could not be read just now


def stage_catalogue() -> StageCatalogue:
    """Read from the cached reference data: normally no upstream call at all."""
    from dealdesk.connections.services import connection_list
    from dealdesk.deals.reference import reference_get
    from dealdesk.deals.services import adapter_for_connection
    from dealdesk.providers.base import ProviderError

    choices: list[tuple[str, str]] = []
    names: dict[str, str] = {}
    unreadable: list[str] = []
    for connection in connection_list():
        try:
            ref = reference_get(adapter=adapter_for_connection(connection))
        except ProviderError:
            unreadable.append(connection.label)
            continue
        for pipeline in ref.pipelines:
            where = connection.label
            if pipeline.name and pipeline.name != connection.label:
                where = f"{connection.label} · {pipeline.name}"
            for stage in pipeline.ordered_stages():
                if stage.id:  # a deleted Stora stage has no id and cannot be set up
                    value = f"{connection.slug}|{stage.id}"
                    choices.append((value, f"{where} · {stage.name}"))
                    names[value] = stage.name
    return StageCatalogue(choices, names, unreadable)
