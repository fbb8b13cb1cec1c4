"""Journeys where a write does not go through: what the user typed survives, the reason shows
next to the form in an alert, and nothing is overwritten upstream without a deliberate choice."""

from __future__ import annotations

from playwright.sync_api import expect


def edit_stora_name(app):
    app.login()
    app.open_deal("stora")
    app.sandbox.clear_log()
    app.page.get_by_role("button", name="Edit Name").click()
    return app.page.get_by_label("Name", exact=True)


def test_a_blank_stora_name_is_refused_next_to_the_input_keeping_what_was_typed(app):
    page = app.page
    name_input = edit_stora_name(app)

    name_input.fill("")
    page.get_by_role("button", name="Save").click()

    assert name_input.evaluate("input => input.validity.valueMissing")  # the browser's own check
    assert app.writes("stora") == []
    name_input.fill("   ")
    page.get_by_role("button", name="Save").click()

    alert = page.locator("#field-name").get_by_role("alert")
    expect(alert).to_contain_text("Enter a name.")
    expect(name_input).to_have_value("   ")
    expect(name_input).to_have_attribute("aria-invalid", "true")
    assert all(write.status == 422 for write in app.writes("stora"))  # Stora kept its name


def test_a_name_of_only_spaces_is_never_sent_upstream(app):
    name_input = edit_stora_name(app)

    name_input.fill("   ")
    app.page.get_by_role("button", name="Save").click()

    expect(app.page.locator("#field-name").get_by_role("alert")).to_contain_text("Enter a name.")
    assert app.writes("stora") == []


def test_tags_nodestash_rejects_show_its_reason_next_to_the_input_and_keep_what_was_typed(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("nodestash")
    app.mark_page()
    app.sandbox.clear_log()
    typed = ", ".join(f"tag{number}" for number in range(21))  # nodestash allows 20

    page.get_by_role("button", name="Edit Tags").click()
    page.get_by_label("Tags", exact=True).fill(typed)
    page.get_by_role("button", name="Save").click()

    alert = page.locator("#field-tags").get_by_role("alert")
    expect(alert).to_contain_text("20")
    expect(page.get_by_label("Tags", exact=True)).to_have_value(typed)
    expect(page.get_by_role("region", name="History")).to_contain_text("Failed")
    app.assert_no_reload()
    (patch,) = app.writes("nodestash")
    assert (patch.method, patch.path, patch.status) == ("PATCH", f"/v1/deals/{deal_id}", 400)
    assert patch.body == {"tags": [f"tag{number}" for number in range(21)]}


def test_a_conflicting_rename_is_refused_until_the_user_applies_it_anyway(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("nodestash")
    app.mark_page()
    page.get_by_role("button", name="Edit Name").click()
    expect(page.get_by_label("Name", exact=True)).to_be_visible()  # the form read the deal
    app.sandbox.mutate_deal("nodestash", deal_id, {"title": "Changed elsewhere"})
    app.sandbox.clear_log()

    page.get_by_label("Name", exact=True).fill("My new name")
    page.get_by_role("button", name="Save").click()

    conflict = page.locator("#field-name").get_by_role("alert")
    expect(conflict).to_contain_text("Someone changed Name in nodestash")
    expect(conflict).to_contain_text("Changed elsewhere")
    expect(page.get_by_label("Name", exact=True)).to_have_value("My new name")
    expect(page.get_by_role("region", name="History")).to_contain_text("Refused")
    assert app.writes("nodestash") == []  # nothing was overwritten

    page.get_by_role("button", name="Apply my change anyway").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("My new name")
    expect(page.get_by_role("button", name="Edit Name")).to_be_visible()
    app.assert_no_reload()
    (patch,) = app.writes("nodestash")
    assert (patch.method, patch.path, patch.body) == (
        "PATCH",
        f"/v1/deals/{deal_id}",
        {"title": "My new name"},
    )


def test_marking_won_a_deal_lost_elsewhere_is_refused_and_shows_its_current_state(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("stora")
    app.mark_page()
    app.sandbox.mutate_deal("stora", deal_id, {"status": "lost", "lost_reason": "other"})
    app.sandbox.clear_log()

    page.get_by_role("button", name="Mark won").click()

    expect(page.locator("#deal-state").get_by_role("alert")).to_contain_text("Nothing was changed")
    expect(page.locator("#status-badge")).to_have_text("Lost")
    expect(page.get_by_role("button", name="Mark won")).to_have_count(0)
    app.assert_no_reload()
    assert app.writes("stora") == []
