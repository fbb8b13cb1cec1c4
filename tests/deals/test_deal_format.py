"""Dates as lists, boards and deal pages show them: the same text as Django's ``date_format``
with the formats DealDesk uses, in the active time zone and language."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django.utils.formats import date_format

from dealdesk.deals.templatetags.deal_format import full_time, relative_time

MOMENTS = [
    dt.datetime(2025, 3, 12, 14, 5, tzinfo=dt.UTC),
    dt.datetime(2024, 12, 31, 23, 59, tzinfo=dt.UTC),  # the next day in Berlin
    dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC),
    dt.datetime(999, 6, 3, 9, 7, tzinfo=dt.UTC),
    dt.datetime(2025, 7, 4, 8, 30),  # naive: read as UTC
]
DAYS = [dt.date(2025, month, day) for month in range(1, 13) for day in (1, 9, 28)]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_full_time_reads_like_date_format(settings, zone):
    settings.TIME_ZONE = zone
    for moment in MOMENTS:
        aware = moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt.UTC)
        assert full_time(moment) == date_format(timezone.localtime(aware), "j M Y, H:i")
    for day in DAYS:
        assert full_time(day) == date_format(day, "j M Y")
    assert full_time(dt.datetime(2025, 3, 12, 14, 5, tzinfo=dt.UTC)).startswith("12 Mar 2025")


def test_relative_time_falls_back_to_the_date_after_a_month():
    now = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    old = now - dt.timedelta(days=40)

    assert relative_time(old, now=now) == date_format(timezone.localtime(old), "j M Y")
    assert relative_time(dt.date(2025, 2, 9)) == "9 Feb 2025"
    assert relative_time(now - dt.timedelta(hours=3), now=now) == "3 h ago"
