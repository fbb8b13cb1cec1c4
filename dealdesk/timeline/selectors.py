"""Reads of a deal's timeline, from the synced store. No function here calls upstream."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dealdesk.deals.models import AuditEntry
from dealdesk.providers.base import Activity
from dealdesk.providers.registry import activities_supported
from dealdesk.sync.activity_store import deal_activities

_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline: an activity, or a change made through DealDesk."""

    at: dt.datetime | None
    activity: Activity | None = None
    audit: AuditEntry | None = None


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]  # newest first
    keeps_activities: bool  # False: the source has no notes or tasks DealDesk can read
    has_audit: bool  # any change made through DealDesk
    has_activities: bool


def deal_timeline(
    *, connection_slug: str, provider: str, deal_id: str, history: list[AuditEntry]
) -> Timeline:
    """The deal's activities and its audit entries (``history``, newest first), one list."""
    keeps = activities_supported(provider)
    activities = deal_activities(connection_slug, deal_id) if keeps else []
    entries = [TimelineEntry(a.created_at, activity=a) for a in activities]
    entries += [TimelineEntry(e.created_at, audit=e) for e in history]
    entries.sort(key=lambda entry: entry.at or _OLDEST, reverse=True)  # stable: ties keep order
    return Timeline(
        entries=entries,
        keeps_activities=keeps,
        has_audit=bool(history),
        has_activities=bool(activities),
    )
