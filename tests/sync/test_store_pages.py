"""The store as people meet it: a write lands in it at once, a deal page says how fresh it is
and refreshes on request, and using DealDesk speeds the sync up."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from dealdesk.deals.services import DealFilters, deal_list, deal_update
from dealdesk.sync import schedule
from dealdesk.sync.models import SyncedDeal, SyncState, TeamActivity
from tests.deals.demo_deals import a_deal, url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("source", ["stora", "nodestash"])
def test_a_write_updates_the_store_at_once_for_everyone(source, sales_user, connections, sandbox):
    detail = a_deal(source)
    new_name = f"Renamed {uuid.uuid4().hex[:6]}"

    deal_update(
        user=sales_user,
        connection_slug=source,
        deal_id=detail.deal.id,
        changes={"name": new_name},
        seen_updated_at=detail.deal.updated_at.isoformat(),
        idempotency_key=str(uuid.uuid4()),
        originals={"name": detail.deal.name},
    )
    sandbox.clear_log()

    row = SyncedDeal.objects.get(connection=connections[source], upstream_id=detail.deal.id)
    assert row.name == new_name
    listed = deal_list(filters=DealFilters(q=new_name), page_size=5).deals
    assert [d.id for d in listed] == [detail.deal.id]
    assert sandbox.requests() == []  # without waiting for a poll


def test_a_deal_page_says_how_fresh_it_is_and_refresh_reads_it_once(sales_client, sandbox):
    detail = a_deal("nodestash")
    sandbox.mutate_deal("nodestash", detail.deal.id, {"title": "Changed upstream"})
    sandbox.clear_log()

    page = sales_client.get(url("detail", detail)).content.decode()
    assert "Synced " in page and " ago" in page and ">Refresh</button>" in page
    assert "Changed upstream" not in page  # not polled yet
    assert sandbox.requests() == []

    refreshed = sales_client.post(url("refresh", detail), follow=True).content.decode()

    assert "Changed upstream" in refreshed
    assert "Refreshed from the source just now." in refreshed
    assert [r.path for r in sandbox.requests("nodestash")] == [f"/v1/deals/{detail.deal.id}"]


def test_a_refresh_that_fails_says_why_and_keeps_the_stored_deal(sales_client, sandbox):
    detail = a_deal("stora")
    sandbox.set_outage("stora", True)

    response = sales_client.post(url("refresh", detail), follow=True)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Stora cannot be reached" in html
    assert detail.deal.name in html


def test_viewers_cannot_refresh(viewer_client, sandbox):
    detail = a_deal("stora")
    sandbox.clear_log()

    response = viewer_client.post(url("refresh", detail))

    assert response.status_code == 403
    assert sandbox.requests() == []


def test_a_page_view_after_a_quiet_spell_starts_the_sync_at_once(
    sales_client, sandbox, settings, connections
):
    settings.DEALDESK_SYNC_AUTOSTART = True
    schedule._last_written = 0.0
    TeamActivity.objects.update_or_create(
        pk=1, defaults={"last_seen_at": timezone.now() - dt.timedelta(hours=1)}
    )
    assert not schedule.team_is_active()
    sandbox.mutate_deal("stora", a_deal("stora").deal.id, {"name": "Seen at once"})
    sandbox.clear_log()

    sales_client.get(reverse("deals:list"))  # the queue runs the kicked syncs inline in tests

    assert schedule.team_is_active()
    assert SyncedDeal.objects.filter(name="Seen at once").exists()
    assert {r.provider for r in sandbox.requests()} == {"stora", "nodestash"}
    states = SyncState.objects.filter(connection__in=connections.values())
    assert all(state.chain_token for state in states)


def test_the_poll_interval_follows_activity_not_head_count(settings, connections):
    from dealdesk.sync.engine import SyncReport

    state = SyncState.objects.get(connection=connections["stora"])
    report = SyncReport("stora", ran=True)
    TeamActivity.objects.update_or_create(pk=1, defaults={"last_seen_at": timezone.now()})
    assert schedule.next_delay(report, state, None) == settings.DEALDESK_SYNC_ACTIVE_INTERVAL
    TeamActivity.objects.filter(pk=1).update(last_seen_at=timezone.now() - dt.timedelta(hours=1))
    assert schedule.next_delay(report, state, None) == settings.DEALDESK_SYNC_IDLE_INTERVAL


def test_an_older_chain_stops_when_a_new_one_starts(connections, sandbox):
    from dealdesk.sync.tasks import sync_connection_task

    connection = connections["stora"]
    old = schedule.chain_start(connection)
    new = schedule.chain_start(connection)
    sandbox.clear_log()

    sync_connection_task.call_local(connection.pk, old)

    assert sandbox.requests() == []  # the old chain's task did nothing
    assert schedule.chain_is_current(connection, new)
