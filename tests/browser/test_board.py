"""Pipeline board journeys in Chromium: drag a card, the same move by keyboard, Lost asking for a
reason, a failed move putting the card back with an alert. Each checks what the sandbox received.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect


@pytest.fixture
def board(app, settings):
    """Logged in as Sales, on the Stora board, with the vendors' rate limits out of the way."""
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    app.sandbox.set_rate_limiting("all", False)
    app.login("sales")
    app.page.goto(f"{app.url}/board/?pipeline=stora:stora")
    app.page.get_by_role("heading", name="Pipeline board").wait_for()
    app.sandbox.clear_log()
    return app


def writes(app, provider: str = "stora"):
    return [r for r in app.sandbox.requests(provider) if r.method != "GET"]


def column(app, name: str):
    return app.page.get_by_role("region", name=name, exact=True)


def first_card(app, column_name: str):
    card = column(app, column_name).locator("[data-card]").first
    deal_id = card.get_attribute("id").removeprefix("card-")
    name = card.get_by_role("heading").inner_text()
    return card, deal_id, name


def card_in(app, column_name: str, deal_id: str):
    return column(app, column_name).locator(f"#card-{deal_id}")


def drag(app, card, column_name: str) -> None:
    """Drag by the card's corner onto the column's header: both points stay in view, so the
    page does not scroll between the press and the release."""
    card.drag_to(
        column(app, column_name),
        source_position={"x": 4, "y": 4},
        target_position={"x": 30, "y": 20},
    )


def stage_id(app, column_name: str) -> str:
    section = column(app, column_name)
    return section.get_attribute("data-drop-column")


def test_dragging_a_card_to_another_stage_moves_it_upstream(board):
    card, deal_id, name = first_card(board, "New enquiry")
    target = stage_id(board, "Contacted")

    drag(board, card, "Contacted")

    expect(board.page.get_by_role("status")).to_contain_text(f"Moved “{name}” to Contacted.")
    expect(card_in(board, "Contacted", deal_id)).to_be_visible()
    expect(card_in(board, "New enquiry", deal_id)).to_have_count(0)
    sent = writes(board)
    assert [(r.method, r.path, r.body) for r in sent] == [
        ("PATCH", f"/2025-09/deals/{deal_id}", {"stage": {"id": target}})
    ]


def test_the_same_move_by_keyboard_with_the_cards_move_to_control(board):
    card, deal_id, name = first_card(board, "New enquiry")
    target = stage_id(board, "Quote sent")

    menu = card.locator("summary")  # "Move…": the card's menu holds "Move to"
    menu.focus()
    board.page.keyboard.press("Enter")
    select = card.get_by_label("Move to")
    expect(select).to_be_visible()
    board.page.keyboard.press("Tab")
    expect(select).to_be_focused()
    select.select_option(label="Quote sent")
    board.page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Move")).to_be_focused()
    board.page.keyboard.press("Enter")

    expect(board.page.get_by_role("status")).to_contain_text(f"Moved “{name}” to Quote sent.")
    expect(card_in(board, "Quote sent", deal_id)).to_be_visible()
    assert [(r.method, r.body) for r in writes(board)] == [("PATCH", {"stage": {"id": target}})]


def test_moving_into_lost_asks_for_the_reason_first(board):
    card, deal_id, name = first_card(board, "Contacted")

    drag(board, card, "Lost")

    reason = board.page.locator(f"#card-{deal_id}").get_by_label("Lost reason")
    expect(reason).to_be_focused()
    assert writes(board) == []  # nothing is sent before the reason is chosen
    reason.select_option(label="Price concerns")
    board.page.locator(f"#card-{deal_id}").get_by_role("button", name="Mark lost").click()

    expect(board.page.get_by_role("status")).to_contain_text(f"Moved “{name}” to Lost.")
    expect(card_in(board, "Lost", deal_id)).to_be_visible()
    assert [(r.method, r.path, r.body) for r in writes(board)] == [
        ("POST", f"/2025-09/deals/{deal_id}/lose", {"lost_reason": "price_concerns"})
    ]


def test_a_failed_move_returns_the_card_with_an_alert(board):
    card, deal_id, _name = first_card(board, "New enquiry")
    board.sandbox.fail_next("stora", 5, 503)

    drag(board, card, "Reserved")

    alert = board.page.locator("#board-feedback").get_by_role("alert")
    expect(alert).to_contain_text(re.compile("unavailable", re.I))
    expect(card_in(board, "New enquiry", deal_id)).to_be_visible()
    expect(card_in(board, "Reserved", deal_id)).to_have_count(0)
    assert card_in(board, "New enquiry", deal_id).get_by_label("Move to").input_value() == (
        stage_id(board, "New enquiry")
    )
    assert writes(board) == []


def test_stale_cards_carry_a_visible_marker_with_an_accessible_label(board):
    stale = board.page.locator("[data-card]").filter(
        has=board.page.get_by_role("img", name=re.compile(r"^Stale: not updated for \d+ days$"))
    )
    expect(stale.first).to_be_visible()
    expect(stale.first.locator(".stale")).to_have_text("Stale")
    for card in stale.all():
        days = int(card.locator(".stale").get_attribute("aria-label").split()[-2])
        assert days >= 14  # idle longer than the default threshold of 14 days
        assert card.get_attribute("data-column") not in ("won", "lost")  # closed: never stale
    assert writes(board) == []


def test_a_move_from_the_cards_menu_shows_at_once_and_a_failure_puts_it_back(board):
    """The card is in its new column while the server is still answering; refused, it returns."""
    page = board.page
    held = []
    page.route("**/board/move/", lambda route: held.append(route))  # the answer waits for us

    card, deal_id, name = first_card(board, "New enquiry")
    card.locator("summary").click()
    card.get_by_label("Move to").select_option(label="Reserved")
    card.get_by_role("button", name="Move").click()

    expect(card_in(board, "Reserved", deal_id)).to_be_visible()  # before any answer
    expect(card_in(board, "New enquiry", deal_id)).to_have_count(0)
    assert len(held) == 1 and writes(board) == []
    board.sandbox.fail_next("stora", 5, 503)
    held[0].continue_()  # the server now tries, and Stora refuses

    expect(board.page.locator("#board-feedback").get_by_role("alert")).to_be_visible()
    expect(card_in(board, "New enquiry", deal_id)).to_be_visible()
    expect(card_in(board, "Reserved", deal_id)).to_have_count(0)
    expect(page.locator(".alert-success")).to_have_count(0)  # never a green box
    page.unroute("**/board/move/")

    card = card_in(board, "New enquiry", deal_id)
    card.locator("summary").click()
    card.get_by_label("Move to").select_option(label="Reserved")
    card.get_by_role("button", name="Move").click()
    expect(board.page.get_by_role("status")).to_contain_text(f"Moved “{name}” to Reserved.")
    expect(card_in(board, "Reserved", deal_id)).to_be_visible()
    assert len(writes(board)) == 1
