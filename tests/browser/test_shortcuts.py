"""Keyboard shortcuts in Chromium: "/" search, j/k through rows, Enter opens, "e" edits, "?" lists
the shortcuts; Previous and Next on the detail page follow the filtered list."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_shortcuts_move_through_the_list_and_open_and_edit_a_deal(app):
    page = app.page
    app.login()
    page.goto(f"{app.url}/deals/?source=nodestash&status=open")
    rows = page.locator("#deal-table tbody tr")
    names = page.locator("tbody td[data-label=Name] a").all_inner_texts()
    assert len(names) >= 3

    page.keyboard.press("/")
    search = page.get_by_label("Search")
    expect(search).to_be_focused()
    page.keyboard.type("j")  # typed into the search box, not taken as a shortcut
    expect(search).to_have_value("j")
    search.fill("")
    page.get_by_role("heading", name="Deals", exact=True).click()

    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_attribute("aria-current", "true")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(1)).to_have_attribute("aria-current", "true")
    expect(rows.nth(0)).not_to_have_attribute("aria-current", "true")
    expect(page.get_by_role("link", name=names[1], exact=True)).to_be_focused()
    app.sandbox.clear_log()

    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text(names[1])
    deal_id = re.search(r"/deals/nodestash/([^/?]+)/", page.url).group(1)
    nav = page.get_by_role("navigation", name="Deal navigation")
    nav.get_by_role("link", name="Next", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(names[2])
    nav.get_by_role("link", name="Previous", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(names[1])
    # Previous and Next read the synced store: no upstream call at all.
    assert app.sandbox.requests("nodestash") == []
    assert deal_id

    page.keyboard.press("e")
    name_input = page.get_by_label("Name", exact=True)
    expect(name_input).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Edit Name")).to_be_visible()

    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Search deals")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert app.writes("nodestash") == []
