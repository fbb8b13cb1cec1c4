"""The change feed open pages follow: which stored deals changed since a token, read from the
store alone."""

from __future__ import annotations

import pytest

from dealdesk.sync.live import live_token
from dealdesk.sync.store import deal_mark_deleted, deals_save, stored_deal

pytestmark = pytest.mark.django_db

FEED = "/live/changes/"


def test_the_feed_names_the_deals_changed_since_the_token_without_calling_upstream(
    sales_client, connections, sandbox, resync
):
    token = live_token()
    deal_id = sorted(sandbox.simulators["stora"].deals)[0]
    sandbox.mutate_deal("stora", deal_id, {"name": "Seen by the feed"})
    resync()
    sandbox.clear_log()

    changes = sales_client.get(FEED, {"since": token}).json()
    idle = sales_client.get(FEED, {"since": changes["token"]}).json()

    assert changes["deals"] == [f"stora:{deal_id}"]
    assert changes["token"] > token
    assert idle == {"token": changes["token"], "deals": [], "overflow": False, "latest": {}}
    assert changes["latest"] == {f"stora:{deal_id}": changes["token"]}
    assert sandbox.requests("stora") == [] and sandbox.requests("nodestash") == []


def test_an_idle_pages_check_costs_one_query_of_the_feed(connections):
    """What 50 open pages ask every 2 s: the latest token, and nothing more when it is theirs."""
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    from dealdesk.sync.live import live_changes

    token = live_token()
    assert token  # the store was filled: there is a feed to follow
    with CaptureQueriesContext(db) as queries:
        answer = live_changes(token)

    assert answer == {"token": token, "deals": [], "overflow": False, "latest": {}}
    assert len(queries) == 1


def test_saving_an_unchanged_deal_is_not_a_change_but_a_deletion_is(connections):
    connection = connections["stora"]
    row = connection.deals.order_by("upstream_id").first()
    deal, _ = stored_deal(connection, row.upstream_id)
    token = live_token()

    deals_save(connection, [deal])  # a poll that sees the same deal again
    assert live_token() == token

    deal_mark_deleted(connection, deal.id)
    assert live_token() == token + 1


def test_a_token_from_another_database_asks_the_page_to_refresh_everything(sales_client):
    answer = sales_client.get(FEED, {"since": live_token() + 1000}).json()

    assert answer == {"token": live_token(), "deals": [], "overflow": True, "latest": {}}


def test_pages_carry_the_feed_and_the_token_they_were_rendered_at(sales_client):
    html = sales_client.get("/deals/").content.decode()

    assert f'data-live-url="{FEED}" data-live-since="{live_token()}"' in html
    assert 'aria-live="polite"' in html


def test_an_open_pages_background_reads_do_not_keep_an_idle_session_alive(sales_client):
    import time

    from dealdesk.middleware import BACKGROUND_HEADER, LAST_SEEN

    sales_client.get("/deals/")
    session = sales_client.session
    session[LAST_SEEN] = time.time() - 120
    session.save()
    before = sales_client.session[LAST_SEEN]

    sales_client.get(FEED, headers={BACKGROUND_HEADER: "1"})
    assert sales_client.session[LAST_SEEN] == before
    sales_client.get(FEED)
    assert sales_client.session[LAST_SEEN] > before


def test_old_feed_rows_and_webhook_event_ids_are_pruned(connections):
    import datetime as dt

    from django.utils import timezone

    from dealdesk.sync.models import DealChange, WebhookEvent
    from dealdesk.sync.tasks import live_and_webhook_prune

    long_ago = timezone.now() - dt.timedelta(days=4)
    WebhookEvent.objects.create(
        connection=connections["stora"], event_id="evt_old", received_at=long_ago
    )
    WebhookEvent.objects.create(
        connection=connections["stora"], event_id="evt_new", received_at=timezone.now()
    )
    DealChange.objects.update(changed_at=long_ago)
    latest = live_token()

    live_and_webhook_prune.call_local()

    assert list(WebhookEvent.objects.values_list("event_id", flat=True)) == ["evt_new"]
    assert list(DealChange.objects.values_list("id", flat=True)) == [latest]  # the counter holds


def test_a_write_names_the_changes_it_made_so_the_writers_board_skips_its_own_echo(
    sales_client, sandbox, no_rate_limits
):
    from django.urls import reverse

    from dealdesk.board.selectors import board_get
    from tests.board.test_board import HTMX, an_open_card, board_html, move_fields

    board = board_get(connection_slug="stora", pipeline_id="stora")
    column, deal = an_open_card(board)
    target = next(c for c in board.columns if c.kind == "open" and c.id != column.id)
    page = sales_client.get("/board/?pipeline=stora:stora")
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    before = live_token()

    moved = sales_client.post(reverse("board:move"), {**data, "target": target.id}, **HTMX)

    change = live_token()
    assert change > before
    assert moved["X-DealDesk-Live-Own"] == f"stora:{deal.id}={change}"
    assert "X-DealDesk-Live-Own" not in page  # reads name nothing
    feed = sales_client.get(FEED, {"since": before}).json()
    assert feed["latest"] == {f"stora:{deal.id}": change}  # the writer's page: its own echo
