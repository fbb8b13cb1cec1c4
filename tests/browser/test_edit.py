"""Inline editing journeys: the field swaps in place and the sandbox gets exactly the change."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def field(page, label: str):
    """The block of one editable field on the detail page (display or form)."""
    return page.locator(".field").filter(has=page.get_by_text(label, exact=True))


def test_renaming_a_stora_deal_swaps_the_name_in_place_and_sends_only_the_name(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("stora")
    app.mark_page()
    app.sandbox.clear_log()

    page.get_by_role("button", name="Edit Name").click()
    name_input = page.get_by_label("Name", exact=True)
    expect(name_input).to_be_focused()
    name_input.fill("Unit 12B — renamed in the browser")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Unit 12B — renamed in the browser")
    expect(page.get_by_role("button", name="Edit Name")).to_be_visible()
    history = page.get_by_role("region", name="History")
    expect(history).to_contain_text("Unit 12B — renamed in the browser")
    expect(history).to_contain_text("Saved")
    app.assert_no_reload()
    (patch,) = app.writes("stora")
    assert (patch.method, patch.path, patch.body, patch.status) == (
        "PATCH",
        f"/2025-09/deals/{deal_id}",
        {"name": "Unit 12B — renamed in the browser"},
        200,
    )


def test_editing_name_and_value_of_a_nodestash_deal_sends_each_with_its_own_idempotency_key(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("nodestash")
    app.mark_page()
    app.sandbox.clear_log()

    page.get_by_role("button", name="Edit Name").click()
    page.get_by_label("Name", exact=True).fill("Initech — TPS automation, phase 2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Initech — TPS automation, phase 2")

    page.get_by_role("button", name="Edit Value").click()
    page.get_by_label("Value", exact=True).fill("1234.50")
    page.get_by_role("button", name="Save").click()

    expect(field(page, "Value")).to_contain_text(re.compile(r"1,234\.50"))
    expect(page.get_by_role("button", name="Edit Value")).to_be_visible()
    history = page.get_by_role("region", name="History")
    expect(history.get_by_role("listitem")).to_have_count(2)
    app.assert_no_reload()
    rename, revalue = app.writes("nodestash")
    assert (rename.method, rename.path, rename.body) == (
        "PATCH",
        f"/v1/deals/{deal_id}",
        {"title": "Initech — TPS automation, phase 2"},
    )
    assert (revalue.method, revalue.path, revalue.body) == (
        "PATCH",
        f"/v1/deals/{deal_id}",
        {"value": 1234.5},
    )
    keys = {rename.headers.get("idempotency-key"), revalue.headers.get("idempotency-key")}
    assert None not in keys and len(keys) == 2


def test_escape_cancels_an_edit_without_writing_and_focus_returns_to_the_value(app):
    page = app.page
    app.login()
    app.open_deal("nodestash")
    app.sandbox.clear_log()
    edit_name = page.get_by_role("button", name="Edit Name")
    edit_name.click()
    name_input = page.get_by_label("Name", exact=True)
    original = name_input.input_value()
    name_input.fill("A name nobody saves")

    name_input.press("Escape")

    expect(page.locator("#field-name [data-focus-value]")).to_be_focused()
    expect(name_input).to_have_count(0)
    expect(field(page, "Name")).to_contain_text(original)
    assert app.writes("nodestash") == []


def test_a_field_can_be_edited_with_the_keyboard_alone(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("stora")
    app.sandbox.clear_log()
    edit_name = page.get_by_role("button", name="Edit Name")

    for _ in range(40):
        page.keyboard.press("Tab")
        if edit_name.evaluate("button => button === document.activeElement"):
            break
    expect(edit_name).to_be_focused()
    page.keyboard.press("Enter")
    name_input = page.get_by_label("Name", exact=True)
    expect(name_input).to_be_focused()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Typed without a mouse")
    value = page.locator("#field-name [data-focus-value]")
    expect(value).to_be_focused()
    expect(value).to_contain_text("Typed without a mouse")
    page.keyboard.press("Tab")  # and the keyboard goes on from there to the field's button
    expect(page.get_by_role("button", name="Edit Name")).to_be_focused()
    (patch,) = app.writes("stora")
    assert (patch.path, patch.body) == (
        f"/2025-09/deals/{deal_id}",
        {"name": "Typed without a mouse"},
    )
