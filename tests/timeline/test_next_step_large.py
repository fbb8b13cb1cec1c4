"""Next steps over a store of 10,000 deals per source: computed from the stored activities in a
bounded number of queries, filtered on without reading activities, and the same cost for the
list with or without the "No next step" filter. Expected values are worked out in Python from
the rows written here, never from the code under test."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dealdesk.connections.models import Connection
from dealdesk.deals.selectors import deal_list
from dealdesk.deals.services import DealFilters
from dealdesk.providers.base import LOST, OPEN, WON, Deal, Pipeline, Stage
from dealdesk.sync.activity_store import next_steps_refresh
from dealdesk.sync.models import SyncedActivity, SyncedDeal
from dealdesk.sync.store import row_fields

pytestmark = pytest.mark.django_db

PER_SOURCE = 10_000
STATUSES = (OPEN, OPEN, OPEN, WON, LOST)


def _connection(slug: str) -> Connection:
    made = Connection(slug=slug, label=slug.title(), provider=slug, base_url="http://127.0.0.1:9/")
    made.set_api_key("not-used")
    made.save()
    return made


def fill_store() -> dict:
    """10,000 deals per source; nodestash deals get, by index: nothing, an overdue task, a task
    due today, a planned meeting and a finished call, or a note only."""
    now = timezone.now()
    today = timezone.localdate(now)
    stora, nodestash = _connection("stora"), _connection("nodestash")
    stage = Stage("ps_1", "Lead", 0, OPEN, "pp_1")
    rows, activities, expected = [], [], {}
    for index in range(PER_SOURCE):
        status = STATUSES[index % len(STATUSES)]
        for connection, deal_id in (
            (stora, f"deal_{index:06d}"),
            (nodestash, f"dl_{index:06d}"),
        ):
            deal = Deal(
                connection_slug=connection.slug,
                source_label=connection.label,
                provider=connection.provider,
                id=deal_id,
                name=f"Deal {index}",
                status=status,
                stage=stage,
                pipeline=Pipeline("pp_1", "Sales", (stage,)),
                updated_at=now - dt.timedelta(minutes=index),
            )
            rows.append(
                SyncedDeal(connection=connection, upstream_id=deal_id, **row_fields(deal, now=now))
            )
        deal_id, plan = f"dl_{index:06d}", index % 5

        def activity(n, kind, subject, due=None, done=False, deal_id=deal_id, index=index):
            activities.append(
                SyncedActivity(
                    connection=nodestash,
                    upstream_id=f"act_{index:06d}{n}",
                    deal_id=deal_id,
                    kind=kind,
                    subject=subject,
                    is_done=done,
                    due_date=due,
                    upstream_created_at=now - dt.timedelta(days=n + 1),
                    upstream_updated_at=now - dt.timedelta(days=n + 1),
                    synced_at=now,
                )
            )

        if plan == 1:
            activity(0, "task", "Overdue task", today - dt.timedelta(days=3))
            activity(1, "task", "Later task", today + dt.timedelta(days=9))
            expected[deal_id] = ("planned", today - dt.timedelta(days=3), "Overdue task")
        elif plan == 2:
            activity(0, "task", "Today's task", today)
            expected[deal_id] = ("planned", today, "Today's task")
        elif plan == 3:
            activity(0, "meeting", "Demo", today + dt.timedelta(days=5))
            activity(1, "call", "Intro call", today - dt.timedelta(days=20), done=True)
            expected[deal_id] = ("planned", today + dt.timedelta(days=5), "Demo")
        else:
            if plan == 4:
                activity(0, "note", "Only a note")
            expected[deal_id] = ("none", None, "")
    SyncedDeal.objects.bulk_create(rows, batch_size=1000)
    SyncedActivity.objects.bulk_create(activities, batch_size=1000)
    return {"stora": stora, "nodestash": nodestash, "expected": expected}


@pytest.fixture(scope="module")
def store(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        filled = fill_store()
    yield filled
    stora, nodestash = filled["stora"], filled["nodestash"]
    with django_db_blocker.unblock():
        Connection.objects.filter(pk__in=[stora.pk, nodestash.pk]).delete()


def stored_steps(connection) -> dict:
    return {
        deal_id: (state, due, subject)
        for deal_id, state, due, subject in SyncedDeal.objects.filter(
            connection=connection
        ).values_list("upstream_id", "next_step_state", "next_step_due", "next_step_subject")
    }


@pytest.fixture(scope="module")
def refreshed(store, django_db_blocker):
    with django_db_blocker.unblock(), CaptureQueriesContext(db) as queries:
        changed = next_steps_refresh(store["nodestash"])
    return {**store, "changed": changed, "queries": len(queries)}


def test_every_deal_gets_its_next_step_in_a_bounded_number_of_queries(refreshed):
    assert stored_steps(refreshed["nodestash"]) == refreshed["expected"]
    assert refreshed["changed"] == PER_SOURCE
    # Two reads, then the writes in batches: never one query per deal.
    assert refreshed["queries"] <= PER_SOURCE // 50
    assert set(s for s, _d, _t in stored_steps(refreshed["stora"]).values()) == {""}


def test_refreshing_again_with_nothing_changed_writes_nothing(refreshed):
    with CaptureQueriesContext(db) as queries:
        assert next_steps_refresh(refreshed["nodestash"]) == 0
    assert len(queries) == 2


def test_the_no_next_step_filter_counts_every_open_deal_without_one(refreshed):
    expected = {
        deal_id
        for deal_id, (state, _due, _subject) in refreshed["expected"].items()
        if state == "none" and STATUSES[int(deal_id[3:]) % len(STATUSES)] == OPEN
    }

    result = deal_list(filters=DealFilters(no_next_step=True), page_size=100)

    assert result.total_count == len(expected)
    assert {deal.id for deal in result.deals} <= expected
    assert all(deal.next_step and not deal.next_step.planned for deal in result.deals)


def test_the_filtered_list_costs_the_same_queries_as_the_plain_list(refreshed):
    cache.clear()  # both cold: neither reads figures or ids another test left in the cache
    with CaptureQueriesContext(db) as plain:
        deal_list(filters=DealFilters(status=OPEN), page_size=25)
    cache.clear()
    with CaptureQueriesContext(db) as filtered:
        result = deal_list(filters=DealFilters(no_next_step=True), page_size=25)

    assert len(result.deals) == 25
    assert len(filtered) == len(plain)
