"""A screen people want to live in (issue 17), at 1280×900 and on a 390×844 phone: how much of
the list is in view, focus after every swap, what the one live region says after each action,
a board that fits, the deal page's stage bar, and an axe scan of every screen and state.
Screenshots of the list, board and deal page at both sizes go to docs/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dealdesk.deals.selectors import DealFilters, deal_list
from tests.browser.axe import assert_accessible

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def live(page):
    return page.locator("#live-status")


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def fully_visible_rows(page) -> int:
    return page.evaluate(
        """() => [...document.querySelectorAll('#deal-table tbody tr')].filter(row => {
            const box = row.getBoundingClientRect();
            return box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0;
        }).length"""
    )


def in_viewport(locator) -> bool:
    return locator.evaluate(
        """el => { const b = el.getBoundingClientRect();
                   return b.top >= 0 && b.top < window.innerHeight && b.height > 0; }"""
    )


# --- The list ------------------------------------------------------------------------------


def test_the_list_shows_15_rows_at_1280x900_and_two_line_cards_on_a_phone(app):
    page = app.page
    page.set_viewport_size(DESKTOP)
    app.login()

    expect(page.locator("#result-count")).to_have_text(re.compile(r"^Showing 1–25 of \d"))
    assert fully_visible_rows(page) >= 15
    heights = page.locator("#deal-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.getBoundingClientRect().height)"
    )
    assert max(heights) <= 42  # single-line rows
    expect(page.locator("#bulk-form")).to_be_hidden()  # no bulk bar until a row is selected
    assert_accessible(page, "list, 1280")
    app.screenshot("deal-list.png")

    page.locator("input[name=deal]").first.check()
    expect(page.locator("#bulk-form")).to_be_visible()
    expect(page.locator("[data-bulk-count]")).to_have_text("1 selected")
    assert_accessible(page, "list with a row selected, 1280")
    page.locator("input[name=deal]").first.uncheck()
    expect(page.locator("#bulk-form")).to_be_hidden()

    page.locator("summary", has_text="Saved views").click()
    expect(page.get_by_label("View name")).to_be_visible()
    assert_accessible(page, "saved views menu open, 1280")
    page.keyboard.press("Escape")
    expect(page.get_by_label("View name")).to_be_hidden()

    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.get_by_label("Search")).to_be_hidden()  # the filters wait behind a button
    first = page.locator("#deal-table tbody tr").first
    box = first.bounding_box()
    assert box and box["y"] < PHONE["height"] and box["height"] <= 70  # two lines, in view
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page, "list, 390")
    app.screenshot("deal-list-phone.png")

    filters = page.get_by_role("button", name="Filters")
    filters.click()
    expect(filters).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_label("Search")).to_be_focused()
    assert_accessible(page, "list with filters open, 390")


def test_focus_and_announcements_follow_filter_sort_and_page(app):
    page = app.page
    page.set_viewport_size(DESKTOP)
    app.login()
    won = deal_list(filters=DealFilters(status="won"), page_size=1).total_count
    everything = deal_list(filters=DealFilters(), page_size=1).total_count

    page.get_by_label("Status").select_option("won")
    expect(live(page)).to_have_text(f"{won} deals found")
    expect(page.locator("#result-count")).to_be_focused()

    page.get_by_label("Status").select_option("")
    expect(live(page)).to_have_text(f"{everything} deals found")
    page.get_by_role("link", name="Name").click()
    expect(page).to_have_url(re.compile(r"sort=name"))
    expect(page.locator("#result-count")).to_be_focused()

    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(live(page)).to_have_text(f"{everything} deals found, showing 26–50")
    expect(page.locator("#result-count")).to_be_focused()

    # Typing a search keeps the focus in the box while the rows change under it.
    search = page.get_by_label("Search")
    search.fill("a")
    expect(live(page)).to_have_text(re.compile(r"^\d+ deals? found"))
    expect(search).to_be_focused()


def test_search_box_keys_escape_leaves_it_arrow_down_enters_the_rows(app):
    page = app.page
    page.set_viewport_size(DESKTOP)
    app.login()
    search = page.get_by_label("Search")
    search.click()
    search.type("e")
    expect(page).to_have_url(re.compile(r"q=e"))

    page.keyboard.press("Escape")
    expect(search).to_have_value("e")  # Escape leaves the box, the query stays
    expect(search).not_to_be_focused()
    page.keyboard.press("j")
    expect(search).to_have_value("e")  # j moves through the rows, it types nothing
    first_link = page.locator("#deal-table tbody tr").first.locator(".cell-name a")
    expect(first_link).to_be_focused()

    search.focus()
    page.keyboard.press("ArrowDown")
    expect(first_link).to_be_focused()

    opener = page.get_by_role("link", name="Board")
    opener.focus()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    assert_accessible(page, "shortcuts dialog, 1280")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()  # the dialog gives the focus back


def test_a_bulk_result_is_in_view_focused_announced_and_the_rows_re_render(app):
    page = app.page
    page.set_viewport_size(DESKTOP)
    app.login()
    deals = [
        d
        for d in deal_list(filters=DealFilters(source="stora", status="open"), page_size=50).deals
        if d.stage and d.stage.name == "New enquiry"
    ][:4]
    stages = {
        s.name: s.id
        for s in deal_list(filters=DealFilters(source="stora"), page_size=1).stage_choices
    }
    page.goto(f"{app.url}/deals/?source=stora&status=open&sort=name")
    page.locator("#deal-table").get_by_role("link").first.wait_for()
    for deal in deals:
        page.get_by_label(f"Select {deal.name}", exact=True).first.check()
    expect(page.locator("[data-bulk-count]")).to_have_text(f"{len(deals)} selected")
    app.sandbox.mutate_deal("stora", deals[1].id, {"stage": {"id": stages["Quote sent"]}})
    page.mouse.wheel(0, 2000)  # the button is pressed from far down the list

    page.get_by_label("Bulk action").select_option(label="Change stage")
    page.get_by_label("New stage").select_option(label="Contacted")
    page.get_by_role("button", name="Apply to selected").click()

    outcome = page.locator("#bulk-results [data-bulk-outcome]")
    expect(outcome).to_be_focused()
    expect(outcome).to_contain_text(f"{len(deals) - 1} of {len(deals)} saved, 1 failed.")
    expect(live(page)).to_have_text(f"{len(deals) - 1} saved, 1 failed")
    assert in_viewport(outcome)
    # The rows are read again: the saved ones show their new stage, nothing stays ticked.
    saved_row = page.locator("#deal-table tbody tr").filter(has_text=deals[0].name).first
    expect(saved_row.locator("td[data-label=Stage]")).to_have_text("Contacted")
    expect(page.locator("input[name=deal]:checked")).to_have_count(0)
    expect(outcome).to_be_focused()
    assert_accessible(page, "bulk result, 1280")


# --- The board -----------------------------------------------------------------------------


@pytest.fixture
def board(app):
    app.page.set_viewport_size(DESKTOP)
    app.login()
    app.page.goto(f"{app.url}/board/?pipeline=stora:stora")
    app.page.get_by_role("heading", name="Pipeline board").wait_for()
    return app


def test_the_board_fits_1280x900_with_8_columns_each_scrolling_on_its_own(board):
    page = board.page
    columns = page.locator(".board-column")
    expect(columns).to_have_count(8)
    sizes = page.evaluate(
        """() => ({doc: document.documentElement.scrollWidth, view: window.innerWidth,
                  board: document.getElementById('board-columns')
                                 .getBoundingClientRect().bottom})"""
    )
    assert sizes["doc"] <= sizes["view"]  # no horizontal scroll
    assert sizes["board"] <= DESKTOP["height"]  # the columns fit the window's height
    for column in columns.all():
        assert column.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    cards = page.locator(".board-column").first.locator(".board-cards")
    assert cards.evaluate("el => getComputedStyle(el).overflowY") == "auto"
    for won_or_lost in ("Won", "Lost"):
        zone = page.get_by_role("region", name=won_or_lost, exact=True)
        expect(zone).to_contain_text("Drop a card here")
    assert_accessible(page, "board, 1280")
    board.screenshot("board.png")

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page, "board, 390")
    board.screenshot("board-phone.png")


def test_a_move_from_the_card_menu_focuses_the_moved_card_and_is_announced(board):
    page = board.page
    column = page.get_by_role("region", name="New enquiry", exact=True)
    card = column.locator("[data-card]").first
    card_id = card.get_attribute("id")
    name = card.get_by_role("heading").inner_text()

    card.locator("summary").click()
    assert_accessible(page, "board with a card menu open, 1280")
    card.get_by_label("Move to").select_option(label="Viewing booked")
    card.get_by_role("button", name="Move").click()

    moved = page.get_by_role("region", name="Viewing booked", exact=True).locator(f"#{card_id}")
    expect(moved).to_be_visible()
    expect(moved).to_be_focused()
    expect(live(page)).to_have_text(f"Moved “{name}” to Viewing booked.")


def test_the_lost_prompts_cancel_gives_the_focus_back_to_the_card(board):
    page = board.page
    card = page.get_by_role("region", name="Contacted", exact=True).locator("[data-card]").first
    card_id = card.get_attribute("id")
    card.locator("summary").click()
    card.get_by_label("Move to").select_option(label="Lost")
    card.get_by_role("button", name="Move").click()
    reason = page.locator(f"#{card_id}").get_by_label("Lost reason")
    expect(reason).to_be_focused()
    assert_accessible(page, "board asking for a lost reason, 1280")

    page.locator(f"#{card_id}").get_by_role("link", name="Cancel").click()

    expect(page.locator(f"#{card_id}")).to_be_focused()
    expect(page.locator(f"#{card_id}").get_by_label("Lost reason")).to_have_count(0)


def test_a_failed_move_puts_the_card_back_with_a_warning_and_no_success_box(board):
    page = board.page
    card = page.get_by_role("region", name="New enquiry", exact=True).locator("[data-card]").first
    card_id = card.get_attribute("id")
    board.sandbox.fail_next("stora", 5, 503)

    card.locator("summary").click()
    card.get_by_label("Move to").select_option(label="Reserved")
    card.get_by_role("button", name="Move").click()

    expect(page.locator("#board-feedback").get_by_role("alert")).to_be_visible()
    expect(page.locator("#board-feedback .alert-success")).to_have_count(0)
    home = page.get_by_role("region", name="New enquiry", exact=True)
    expect(home.locator(f"#{card_id}")).to_be_visible()
    assert_accessible(page, "board after a failed move, 1280")


# --- The deal page -------------------------------------------------------------------------


def test_the_stage_bar_moves_in_one_click_and_says_so(app):
    page = app.page
    page.set_viewport_size(DESKTOP)
    app.login()
    app.open_deal("stora")
    state = page.locator("#deal-state")
    expect(page.locator(".deal-meta")).not_to_have_text(re.compile("Stora · Stora"))
    assert_accessible(page, "deal page, 1280")
    app.screenshot("deal-detail.png")
    current = state.locator("[aria-current=step]").inner_text()
    target = state.locator(".step-button[name=stage]").first
    target_name = re.sub(r"^Move to\s*", "", target.inner_text()).strip()

    target.click()

    expect(live(page)).to_have_text(f"Stage changed to {target_name}")
    expect(state.locator("[aria-current=step]")).to_contain_text(target_name)
    expect(state.locator("[aria-current=step] .step-label")).to_be_focused()
    assert current != target_name

    page.get_by_role("button", name="Mark Lost").click()
    expect(page.get_by_role("combobox", name="Lost reason")).to_be_focused()
    assert_accessible(page, "deal page asking for a lost reason, 1280")
    page.get_by_role("combobox", name="Lost reason").select_option(label="Price concerns")
    page.get_by_role("button", name="Confirm lost").click()
    expect(live(page)).to_have_text("Marked lost: Price concerns")
    expect(state.locator("[aria-current=step]")).to_contain_text("Lost")
    assert_accessible(page, "lost deal, 1280")

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page, "deal page, 390")
    app.screenshot("deal-detail-phone.png")


def test_the_document_title_follows_a_rename(app):
    page = app.page
    page.set_viewport_size(DESKTOP)
    app.login()
    app.open_deal("nodestash")
    page.get_by_role("button", name="Edit Name").click()
    assert_accessible(page, "deal page editing a field, 1280")
    page.get_by_role("textbox", name="Name").fill("Renamed for the title")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Renamed for the title")
    expect(page).to_have_title("Renamed for the title · DealDesk")
    expect(live(page)).to_have_text("Name saved")


# --- No dead ends --------------------------------------------------------------------------


def test_the_designed_404_and_a_viewer_without_an_admin_link(app, settings):
    page = app.page
    settings.DEBUG = True  # as under `make run`
    page.set_viewport_size(DESKTOP)
    app.login("viewer")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_have_count(0)

    page.goto(f"{app.url}/no/such/page/")

    expect(page.get_by_role("heading", level=1)).to_have_text("We couldn’t find that")
    assert_accessible(page, "404 page, 1280")
    page.set_viewport_size(PHONE)
    assert_accessible(page, "404 page, 390")
