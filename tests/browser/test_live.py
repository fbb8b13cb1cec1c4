"""Live pages with two browsers: what A (or the vendor) changes reaches B's open list, board and
detail page within 3 s, without a reload, without stealing B's focus or B's typing."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from dealdesk.connections.models import Connection
from dealdesk.sync.engine import sync_run
from dealdesk.sync.webhooks import webhook_register
from tests.browser.conftest import PASSWORD

LIVE = 3_000  # ms: what "within 3 s" allows after the change is stored


@pytest.fixture
def other(app, browser):
    """B: more signed-in pages, each in its own browser context (a window of its own)."""
    contexts = []

    def open_page(path: str):
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{app.url}/accounts/login/")
        page.get_by_label("Username").fill("sales")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Deals").wait_for()
        page.goto(f"{app.url}{path}")
        page.evaluate("window.__marker = 1")
        return page

    yield open_page
    for context in contexts:
        context.close()


def no_reload(page) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"


def row(page, deal_id: str):
    return page.locator("tr[data-row]").filter(
        has=page.locator(f'td[data-deal-key="stora:{deal_id}"]')
    )


def test_a_rename_by_a_reaches_bs_list_and_detail_without_a_reload(app, other):
    page = app.page
    app.login()
    deal_id = app.open_deal("stora")
    b_list = other("/deals/?source=stora&status=open")
    b_detail = other(f"/deals/stora/{deal_id}/")
    row(b_list, deal_id).locator("td[data-label=Name] a").focus()  # B's keyboard cursor

    page.get_by_role("button", name="Edit Name").click()
    page.get_by_label("Name", exact=True).fill("Renamed by A")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Renamed by A")

    expect(row(b_list, deal_id).locator("td[data-label=Name]")).to_contain_text(
        "Renamed by A", timeout=LIVE
    )
    expect(b_detail.get_by_role("heading", level=1)).to_have_text("Renamed by A", timeout=LIVE)
    expect(b_detail.locator("#live-notice")).to_have_text(
        "Changed by someone else just now: Name is now 'Renamed by A'."
    )
    expect(b_detail.locator("#live-status")).to_contain_text("Name is now 'Renamed by A'")
    # A's own page says nothing about "someone else".
    page.wait_for_timeout(2_500)
    expect(page.locator("#live-notice")).to_have_count(0)
    # B's keyboard cursor stayed on the row's link; the row kept its place.
    focused_row_key = "document.activeElement.closest('tr').querySelector('[data-deal-key]')"
    assert b_list.evaluate(f"{focused_row_key}.dataset.dealKey") == f"stora:{deal_id}"
    no_reload(b_list)
    no_reload(b_detail)


def test_b_keeps_what_they_typed_while_a_renames_the_same_deal(app, other):
    page = app.page
    app.login()
    deal_id = app.open_deal("stora")
    b_detail = other(f"/deals/stora/{deal_id}/")
    b_detail.get_by_role("button", name="Edit Name").click()
    b_input = b_detail.get_by_label("Name", exact=True)
    b_input.fill("B is typing this")

    page.get_by_role("button", name="Edit Name").click()
    page.get_by_label("Name", exact=True).fill("A saved this")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("A saved this")

    expect(b_detail.locator("#live-notice")).to_contain_text(
        "Name is now 'A saved this'", timeout=LIVE
    )
    expect(b_input).to_have_value("B is typing this")
    expect(b_input).to_be_focused()
    b_detail.get_by_role("button", name="Save").click()  # still goes through the conflict check
    expect(b_detail.get_by_text("since you opened it")).to_be_visible()
    no_reload(b_detail)


def test_a_move_on_as_board_reaches_bs_board_and_detail(app, other):
    page = app.page
    app.login()
    page.goto(f"{app.url}/board/?pipeline=stora:stora")
    card = page.get_by_role("region", name="New enquiry", exact=True).locator("[data-card]").first
    deal_id = card.get_attribute("id").removeprefix("card-")
    b_board = other("/board/?pipeline=stora:stora")
    b_detail = other(f"/deals/stora/{deal_id}/")

    card.locator("summary").click()  # the card's Move menu
    card.get_by_label("Move to").select_option(label="Quote sent")
    card.get_by_role("button", name="Move").click()
    expect(page.get_by_role("status")).to_contain_text("to Quote sent.")

    b_column = b_board.get_by_role("region", name="Quote sent", exact=True)
    expect(b_column.locator(f"#card-{deal_id}")).to_be_visible(timeout=LIVE)
    expect(
        b_board.get_by_role("region", name="New enquiry", exact=True).locator(f"#card-{deal_id}")
    ).to_have_count(0)
    expect(b_detail.locator("#deal-state")).to_contain_text("Quote sent", timeout=LIVE)
    no_reload(b_board)
    no_reload(b_detail)


def test_an_upstream_change_reaches_b_within_3_s_with_webhooks_on(app, other, live_server):
    webhook_register(Connection.objects.get(slug="stora"), base_url=live_server.url)
    deal_id = sorted(app.sandbox.simulators["stora"].deals)[0]
    b_detail = other(f"/deals/stora/{deal_id}/")
    b_board = other("/board/?pipeline=stora:stora")

    app.sandbox.mutate_deal("stora", deal_id, {"name": "Changed in Stora"})

    expect(b_detail.get_by_role("heading", level=1)).to_have_text("Changed in Stora", timeout=LIVE)
    expect(b_board.locator(f"#card-{deal_id}")).to_contain_text("Changed in Stora", timeout=LIVE)
    no_reload(b_detail)


def test_without_webhooks_an_upstream_change_arrives_with_the_next_poll(app, other, settings):
    settings.DEALDESK_SYNC_ACTIVE_INTERVAL = 1
    connection = Connection.objects.get(slug="stora")
    deal_id = sorted(app.sandbox.simulators["stora"].deals)[0]
    b_detail = other(f"/deals/stora/{deal_id}/")

    app.sandbox.mutate_deal("stora", deal_id, {"name": "Polled from Stora"})
    time.sleep(settings.DEALDESK_SYNC_ACTIVE_INTERVAL)  # the worker's next run comes at most now
    assert not sync_run(connection).error

    expect(b_detail.get_by_role("heading", level=1)).to_have_text("Polled from Stora", timeout=LIVE)
    no_reload(b_detail)
