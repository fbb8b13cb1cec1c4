"""The board's rendered columns from the cache (``board/fragments.py``): secrets fresh per
response, a store change shown on the next render, editors and viewers never sharing an entry,
and entries that expire when a card's age or stale marker would change."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.middleware.csrf import _unmask_cipher_token
from django.test import Client
from django.urls import reverse

from dealdesk.board.fragments import (
    CACHE_TTL,
    CSRF_PLACEHOLDER,
    KEY_PLACEHOLDER,
    cache_key,
    seconds_valid,
)
from dealdesk.board.selectors import board_cards_load, board_get
from dealdesk.deals.stale import StaleThresholds
from tests.board.test_board import HTMX, an_open_card, board_html, move_fields
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

KEYS = re.compile(r'name="idempotency_key" value="([^"]*)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]*)"')


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Moves re-read the deal and the board: the per-second budgets are not under test."""


def columns_of(html: str) -> str:
    start = html.index('<div id="board-columns"')
    return html[start : html.index('<section id="pipeline-summary"', start)]


def without_secrets(html: str) -> str:
    """What ``static/js/live.js`` compares: the columns without keys and CSRF tokens."""
    return CSRF.sub("", KEYS.sub("", columns_of(html)))


def another_sales_client() -> Client:
    other = Client()
    other.force_login(make_user("seller2", "Sales"))
    return other


def cached_columns(*, can_edit: bool) -> str | None:
    return cache.get(
        cache_key(board_get(connection_slug="stora", pipeline_id="stora"), can_edit=can_edit)
    )


def test_the_columns_are_cached_with_placeholders_instead_of_secrets(sales_client):
    html = board_html(sales_client, "stora:stora")

    cached = cached_columns(can_edit=True)
    assert cached is not None
    keys, tokens = KEYS.findall(html), CSRF.findall(html)
    assert len(keys) >= 40 and tokens
    assert cached.count(KEY_PLACEHOLDER) == len(keys)
    assert CSRF_PLACEHOLDER in cached
    assert not any(key in cached for key in keys) and not any(t in cached for t in tokens)


def test_every_render_and_every_user_gets_fresh_idempotency_keys_and_its_own_csrf_token(
    sales_client,
):
    first = board_html(sales_client, "stora:stora")
    second = board_html(sales_client, "stora:stora")  # from the cache
    other_client = another_sales_client()
    other = board_html(other_client, "stora:stora")

    keys = [KEYS.findall(html) for html in (first, second, other)]
    every_key = [key for page in keys for key in page]
    assert len(keys[0]) >= 40 and len(every_key) == 3 * len(keys[0])
    assert len(set(every_key)) == len(every_key)  # no two forms share a key
    assert all(re.fullmatch(r"[0-9a-f]{32}", key) for key in every_key)
    # Each page's forms carry its own user's CSRF secret (masked), never another user's.
    for html, client in ((second, sales_client), (other, other_client)):
        secrets = {_unmask_cipher_token(token) for token in CSRF.findall(columns_of(html))}
        assert secrets == {client.cookies["csrftoken"].value}
    assert sales_client.cookies["csrftoken"].value != other_client.cookies["csrftoken"].value
    # What the live update compares is the same whatever the keys and tokens.
    assert without_secrets(first) == without_secrets(second) == without_secrets(other)


def test_a_cached_token_is_the_requests_own_so_a_move_from_a_cached_board_is_accepted(
    connections,
):
    cache.clear()
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(make_user("seller3", "Sales"))
    board = board_get(connection_slug="stora", pipeline_id="stora")
    column, deal = an_open_card(board)
    target = next(c for c in board.columns if c.kind == "open" and c.id != column.id)
    board_html(another_sales_client(), "stora:stora")  # someone else fills the cache

    data = move_fields(board_html(csrf_client, "stora:stora"), deal.id)
    response = csrf_client.post(reverse("board:move"), {**data, "target": target.id}, **HTMX)

    assert response.status_code == 200, response.content
    assert "Moved" in response.content.decode()


def test_a_move_shows_on_the_next_render(sales_client):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    column, deal = an_open_card(board)
    target = next(c for c in board.columns if c.kind == "open" and c.id != column.id)
    before = board_html(sales_client, "stora:stora")
    assert f'data-deal-key="{deal.key}" data-column="{column.id}"' in before

    data = move_fields(before, deal.id)
    sales_client.post(reverse("board:move"), {**data, "target": target.id}, **HTMX)

    after = board_html(sales_client, "stora:stora")
    assert f'data-deal-key="{deal.key}" data-column="{target.id}"' in after


def test_a_sync_that_changes_a_deal_shows_on_the_next_render(sales_client, sandbox, resync):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    _column, deal = an_open_card(board)
    assert "Renamed by the sync" not in board_html(sales_client, "stora:stora")

    sandbox.mutate_deal("stora", deal.id, {"name": "Renamed by the sync"})
    resync()

    assert "Renamed by the sync" in board_html(sales_client, "stora:stora")


def test_a_viewer_never_gets_an_editors_cached_board(sales_client, viewer_user):
    editor = board_html(sales_client, "stora:stora")
    viewer_client = Client()
    viewer_client.force_login(viewer_user)

    viewer = board_html(viewer_client, "stora:stora")

    assert 'class="move-form"' in editor and 'draggable="true"' in editor
    assert 'class="move-form"' not in viewer and 'draggable="true"' not in viewer
    assert "idempotency_key" not in viewer and "Move to" not in viewer
    assert 'class="column-new"' in editor and 'class="column-new"' not in viewer


def test_an_editor_never_gets_a_viewers_cached_board(viewer_client, sales_user):
    viewer = board_html(viewer_client, "stora:stora")
    editor_client = Client()
    editor_client.force_login(sales_user)

    editor = board_html(editor_client, "stora:stora")

    assert 'class="move-form"' not in viewer
    assert editor.count('class="move-form"') >= 40 and 'draggable="true"' in editor
    assert 'class="column-new"' in editor and 'class="column-new"' not in viewer


def test_editing_rights_and_stale_thresholds_are_part_of_the_key(connections):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    editor, viewer = cache_key(board, can_edit=True), cache_key(board, can_edit=False)

    board.stale = StaleThresholds(by_stage={("stora", board.columns[0].id): 1})

    assert len({editor, viewer, cache_key(board, can_edit=True)}) == 3


def test_an_entry_expires_when_a_cards_age_or_stale_marker_would_change(connections):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    column, deal = an_open_card(board)
    for each in board.columns:
        each.deals = [deal] if each is column else []
    deal.created_at = now - dt.timedelta(days=3, seconds=100)  # "3 days" for another day
    deal.updated_at = now - dt.timedelta(days=3)

    board.stale = StaleThresholds(default_days=30)
    assert seconds_valid(board, now) == CACHE_TTL  # nothing changes within the TTL
    deal.created_at = now - dt.timedelta(minutes=59, seconds=30)  # "< 1 h" becomes "1 h"
    assert seconds_valid(board, now) == 30
    deal.created_at = now - dt.timedelta(days=10)
    board.stale = StaleThresholds(default_days=3)  # turns stale just after 3 days idle
    deal.updated_at = now - dt.timedelta(days=3) + dt.timedelta(seconds=200)
    assert seconds_valid(board, now) == 201
    deal.updated_at = now - dt.timedelta(days=5, hours=23, minutes=55)  # "5 days" becomes 6
    assert seconds_valid(board, now) == 300


def test_each_cards_move_to_select_offers_every_target_with_its_own_column_selected(
    sales_client,
):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    html = board_html(sales_client, "stora:stora")
    targets = [(c.id, c.name) for c in board.targets()]

    checked = 0
    for column in board.columns:
        for deal in column.deals:
            select = re.search(
                rf'<select id="card-{deal.id}-target" name="target">(.*?)</select>', html, re.S
            ).group(1)
            options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select)
            assert [(value, name) for value, _selected, name in options] == targets
            own = [column.id] if column.kind != "other" else []  # "Other stages": no target
            assert [value for value, selected, _name in options if selected] == own
            checked += 1
    assert checked >= 40


def test_a_board_read_without_its_cards_reads_them_on_demand_to_the_same_board(connections):
    loaded = board_get(connection_slug="stora", pipeline_id="stora", cards=2)
    lazy = board_get(connection_slug="stora", pipeline_id="stora", cards=2, load_cards=False)

    assert not any(column.deals for column in lazy.columns)
    assert lazy.truncated is loaded.truncated is True  # from the counts, before any card
    board_cards_load(lazy)
    assert [[d.key for d in c.deals] for c in lazy.columns] == [
        [d.key for d in c.deals] for c in loaded.columns
    ]
    assert [c.hidden_count for c in lazy.columns] == [c.hidden_count for c in loaded.columns]
