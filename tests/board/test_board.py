"""The pipeline board over the sandbox: columns per pipeline, moves mapped onto the service writes,
Lost asking for a reason, failures as alerts, the SVG summary. Every move checks what the sandbox
received."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse

from dealdesk.board.chart import pipeline_chart
from dealdesk.board.selectors import (
    CARDS_PER_COLUMN,
    LOST_COLUMN,
    WON_COLUMN,
    board_get,
    board_pipelines,
)
from dealdesk.deals.models import AuditEntry
from tests.deals.demo_deals import writes

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Each move re-reads the deal and the board: the per-second budgets are not under test."""


def pipeline_value(slug: str, name: str | None = None) -> str:
    choices, _errors = board_pipelines()
    return next(
        c.value for c in choices if c.connection_slug == slug and (name is None or name in c.label)
    )


def move_fields(html: str, deal_id: str) -> dict[str, str]:
    """What a card's Move form posts, as rendered (hidden inputs and the current select)."""
    form = re.search(
        rf'<form class="move-form"[^>]*>(?:(?!</form>).)*?'
        rf'name="deal_id" value="{deal_id}".*?</form>',
        html,
        re.S,
    ).group(0)
    return {
        name: html_lib.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }


def board_html(client, value: str) -> str:
    response = client.get(reverse("board:board"), {"pipeline": value})
    assert response.status_code == 200
    return response.content.decode()


# --- Columns ---------------------------------------------------------------------------------


def test_nodestash_board_has_the_pipeline_stages_in_order_with_won_and_lost_last(connections):
    choices, errors = board_pipelines()
    assert not errors
    sales = next(c for c in choices if c.label == "nodestash · Sales")
    board = board_get(connection_slug="nodestash", pipeline_id=sales.pipeline_id)
    names = [column.name for column in board.columns]
    assert names == ["Lead", "Qualified", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
    assert [c.kind for c in board.columns][-2:] == ["won", "lost"]
    assert all(d.pipeline.id == sales.pipeline_id for c in board.columns for d in c.deals)
    assert board.deal_count > 0 and not board.truncated


def test_stora_board_adds_won_and_lost_columns_after_its_stages(connections):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    names = [column.name for column in board.columns]
    assert names[:5] == ["New enquiry", "Contacted", "Viewing booked", "Quote sent", "Reserved"]
    assert names[5:7] == ["Won", "Lost"]
    assert all(d.status == "won" for d in board.column(WON_COLUMN).deals)
    assert all(d.status == "lost" for d in board.column(LOST_COLUMN).deals)
    # The demo deal in a deleted stage has no column of its own: it waits in "Other stages".
    assert names[-1] == "Other stages"
    assert board.lost_reasons and board.lost_reasons[0].value == "accessibility_concern"


def test_column_totals_are_per_currency(connections):
    board = board_get(
        connection_slug="nodestash", pipeline_id=pipeline_value("nodestash", "Sales").split(":")[1]
    )
    for column in board.columns:
        currencies = [total.currency for total in column.totals]
        assert currencies == sorted(set(currencies))
        for total in column.totals:
            expected = sum(
                d.value.amount
                for d in column.deals
                if d.value and d.value.currency == total.currency
            )
            assert total.amount == expected


def test_board_shows_a_bounded_number_of_cards_per_column_but_counts_every_deal(
    connections, sandbox
):
    every = len(sandbox.simulators["stora"].deals)

    board = board_get(connection_slug="stora", pipeline_id="stora", cards=2)

    assert all(len(column.deals) <= 2 for column in board.columns)
    assert board.deal_count == every  # counts and totals cover the deals not drawn as cards
    assert board.truncated
    assert sum(column.hidden_count for column in board.columns) == every - sum(
        len(column.deals) for column in board.columns
    )
    assert CARDS_PER_COLUMN == 25
    assert sandbox.requests() == []


def test_board_page_shows_cards_with_name_value_owner_and_age(sales_client):
    html = board_html(sales_client, "stora:stora")
    assert "<h1>Pipeline board</h1>" in html
    assert 'aria-labelledby="column-won-name"' in html
    assert "<dt>Value</dt>" in html and "<dt>Owner</dt>" in html and "<dt>Age</dt>" in html
    assert 'draggable="true"' in html
    assert html.count('<label for="card-') >= 40  # one "Move to" per card


def test_viewers_see_the_board_without_move_controls(viewer_client):
    response = viewer_client.get(reverse("board:board"), {"pipeline": "stora:stora"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Move to" not in html and 'draggable="true"' not in html
    assert viewer_client.post(reverse("board:move"), {}).status_code == 403


def test_pipeline_change_over_htmx_returns_only_the_board_body(sales_client):
    response = sales_client.get(
        reverse("board:board"), {"pipeline": pipeline_value("nodestash", "Partnerships")}, **HTMX
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="board-body"')
    assert "Intro call" in html and "<h1>" not in html


def test_summary_chart_is_server_drawn_svg_with_a_text_description(connections):
    board = board_get(
        connection_slug="nodestash", pipeline_id=pipeline_value("nodestash", "Sales").split(":")[1]
    )
    chart = pipeline_chart(board)
    assert len(chart.rows) == len(board.columns)
    lead = board.column(board.columns[0].id)
    assert chart.description.startswith(f"Lead: {lead.count} deal")
    assert set(chart.currencies) <= {"EUR", "USD", "GBP"}
    widest = max(bar.width for row in chart.rows for bar in row.bars if bar.kind == "count")
    assert widest == 330


# --- Moves -----------------------------------------------------------------------------------


def an_open_card(board, *, not_in: str | None = None):
    for column in board.columns:
        if column.kind == "open" and column.id != not_in and column.deals:
            return column, column.deals[0]
    raise AssertionError("the demo seed has open deals")


def test_moving_a_stora_card_to_another_stage_patches_the_stage_and_rerenders_columns(
    sales_client, sandbox
):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    column, deal = an_open_card(board)
    target = next(c for c in board.columns if c.kind == "open" and c.id != column.id)
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    sandbox.clear_log()

    response = sales_client.post(reverse("board:move"), {**data, "target": target.id}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert f"Moved “{deal.name}” to {target.name}." in html_lib.unescape(html)
    assert f'id="{column.dom_id}"' in html and f'id="{target.dom_id}"' in html
    assert html.count('hx-swap-oob="true"') >= 3  # both columns and the summary
    sent = writes(sandbox, "stora")
    assert [(r.method, r.path) for r in sent] == [("PATCH", f"/2025-09/deals/{deal.id}")]
    assert sent[0].body == {"stage": {"id": target.id}}
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.outcome) == ("change_stage", "succeeded")


def test_moving_into_stora_lost_asks_for_the_reason_first_and_sends_nothing(sales_client, sandbox):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    _column, deal = an_open_card(board)
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    sandbox.clear_log()

    response = sales_client.post(reverse("board:move"), {**data, "target": LOST_COLUMN}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Retarget"] == f"#card-{deal.id}"
    assert 'name="reason"' in html and "Lost reason" in html and "Mark lost" in html
    assert writes(sandbox, "stora") == []

    response = sales_client.post(
        reverse("board:move"),
        {**move_fields(html, deal.id), "reason": "price_concerns"},
        **HTMX,
    )
    assert response.status_code == 200
    sent = writes(sandbox, "stora")
    assert [(r.method, r.path, r.body) for r in sent] == [
        ("POST", f"/2025-09/deals/{deal.id}/lose", {"lost_reason": "price_concerns"})
    ]


def test_moving_into_a_nodestash_lost_stage_preselects_that_stage_as_the_reason(
    sales_client, sandbox
):
    value = pipeline_value("nodestash", "Partnerships")
    board = board_get(connection_slug="nodestash", pipeline_id=value.split(":")[1])
    _column, deal = an_open_card(board)
    competitor = next(c for c in board.columns if c.name == "Lost – competitor")
    data = move_fields(board_html(sales_client, value), deal.id)
    sandbox.clear_log()

    asked = sales_client.post(reverse("board:move"), {**data, "target": competitor.id}, **HTMX)
    html = asked.content.decode()
    assert f'<option value="{competitor.id}" selected>' in html
    assert writes(sandbox, "nodestash") == []

    sales_client.post(
        reverse("board:move"),
        {**move_fields(html, deal.id), "reason": competitor.id},
        **HTMX,
    )
    sent = writes(sandbox, "nodestash")
    assert [(r.method, r.body) for r in sent] == [("PATCH", {"stage_id": competitor.id})]
    assert AuditEntry.objects.get().action == "mark_lost"


def test_moving_a_stora_card_to_won_marks_it_won(sales_client, sandbox):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    _column, deal = an_open_card(board)
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    sandbox.clear_log()

    sales_client.post(reverse("board:move"), {**data, "target": WON_COLUMN}, **HTMX)

    assert [r.path for r in writes(sandbox, "stora")] == [f"/2025-09/deals/{deal.id}/win"]


def test_moving_a_lost_stora_card_to_a_stage_reopens_it_there(sales_client, sandbox):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    deal = board.column(LOST_COLUMN).deals[0]
    target = board.columns[1]
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    sandbox.clear_log()

    sales_client.post(reverse("board:move"), {**data, "target": target.id}, **HTMX)

    sent = writes(sandbox, "stora")
    assert [(r.path, r.body) for r in sent] == [
        (f"/2025-09/deals/{deal.id}/reopen", {"stage": {"id": target.id}})
    ]
    assert AuditEntry.objects.get().action == "reopen"


def test_a_won_stora_card_cannot_jump_to_lost(sales_client, sandbox):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    deal = board.column(WON_COLUMN).deals[0]
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    sandbox.clear_log()

    response = sales_client.post(
        reverse("board:move"),
        {**data, "target": LOST_COLUMN, "reason": "price_concerns"},
        **HTMX,
    )

    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()
    assert writes(sandbox, "stora") == []


def test_a_failed_move_answers_with_an_alert_and_no_columns(sales_client, sandbox):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    column, deal = an_open_card(board)
    target = next(c for c in board.columns if c.kind == "open" and c.id != column.id)
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    sandbox.clear_log()
    sandbox.fail_next("stora", 5, 503)

    response = sales_client.post(reverse("board:move"), {**data, "target": target.id}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 503
    assert 'role="alert"' in html and "unavailable" in html
    assert "hx-swap-oob" not in html
    assert writes(sandbox, "stora") == []


def test_a_move_of_a_deal_changed_upstream_is_refused_as_a_conflict(sales_client, sandbox):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    column, deal = an_open_card(board)
    others = [c for c in board.columns if c.kind == "open" and c.id != column.id]
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    sandbox.mutate_deal("stora", deal.id, {"stage": {"id": others[0].id}})
    sandbox.clear_log()

    response = sales_client.post(reverse("board:move"), {**data, "target": others[1].id}, **HTMX)

    assert response.status_code == 409
    assert writes(sandbox, "stora") == []
    assert AuditEntry.objects.get().outcome == "conflict"


def test_without_javascript_a_move_redirects_back_to_the_board(sales_client, sandbox):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    column, deal = an_open_card(board)
    target = next(c for c in board.columns if c.kind == "open" and c.id != column.id)
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)

    response = sales_client.post(reverse("board:move"), {**data, "target": target.id})

    assert response.status_code == 302
    page = sales_client.get(response["Location"]).content.decode()
    assert "Moved “" in page and 'role="status"' in page


@pytest.mark.parametrize(
    "crafted, words",
    [
        ({"deal_id": "a/b"}, "is not a Stora deal id"),
        ({"deal_id": "../staff"}, "is not a Stora deal id"),
        ({"deal_id": "deal_x?expand=all"}, "is not a Stora deal id"),
        ({"deal_id": "dl_0123abcd"}, "is not a Stora deal id"),
        ({"connection": "bad slug!"}, "is not a source DealDesk knows"),
        ({"connection": "../admin"}, "is not a source DealDesk knows"),
    ],
)
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_a_crafted_move_is_a_400_with_a_message_and_sends_nothing(
    sales_client, sandbox, crafted, words, htmx
):
    board = board_get(connection_slug="stora", pipeline_id="stora")
    column, deal = an_open_card(board)
    target = next(c for c in board.columns if c.kind == "open" and c.id != column.id)
    data = move_fields(board_html(sales_client, "stora:stora"), deal.id)
    sandbox.clear_log()

    response = sales_client.post(
        reverse("board:move"), {**data, "target": target.id, **crafted}, **(HTMX if htmx else {})
    )

    assert response.status_code == 400
    assert words in html_lib.unescape(response.content.decode())
    assert [r.path for r in sandbox.requests("stora") if "/deals/" in r.path] == []
