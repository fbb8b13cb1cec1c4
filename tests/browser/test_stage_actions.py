"""Stage, lost and reopen journeys: the state region swaps in place and the sandbox receives the
vendor's own call (Stora's lose/reopen endpoints, nodestash's stage_id PATCH)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

STAGE_BODY = {
    "stora": lambda stage_id: {"stage": {"id": stage_id}},
    "nodestash": lambda stage_id: {"stage_id": stage_id},
}
DEAL_PATH = {"stora": "/2025-09/deals/{}", "nodestash": "/v1/deals/{}"}


def choose_other_option(select) -> tuple[str, str]:
    """Select the last option that is neither chosen nor a placeholder; returns (value, label)."""
    current = select.input_value()
    value, label = [
        (option.get_attribute("value"), option.inner_text())
        for option in select.locator("option").all()
        if option.get_attribute("value") not in ("", current)
    ][-1]
    select.select_option(value)
    return value, label


def status_badge(page):
    return page.locator("#status-badge")


def current_step(page):
    """The stage bar's current step: the deal's stage, or Won / Lost at the bar's end."""
    return page.locator("#deal-state [aria-current=step]")


def choose_other_stage(page) -> tuple[str, str]:
    """The last stage of the stage bar the deal is not in; returns (id, name)."""
    button = page.locator("#deal-state .step-button[name=stage]").last
    name = re.sub(r"^Move to\s*", "", button.inner_text()).strip()
    return button.get_attribute("value"), name


@pytest.mark.parametrize("source", ["stora", "nodestash"])
def test_changing_stage_sends_the_chosen_stage_and_refreshes_state_and_history(app, source):
    page = app.page
    app.login()
    deal_id = app.open_deal(source)
    app.mark_page()
    app.sandbox.clear_log()

    stage_id, stage_name = choose_other_stage(page)
    page.get_by_role("button", name=f"Move to {stage_name}").click()  # one click moves it

    expect(current_step(page)).to_contain_text(stage_name)
    expect(page.get_by_role("button", name=f"Move to {stage_name}")).to_have_count(0)
    expect(page.get_by_role("region", name="History")).to_contain_text(stage_name)
    expect(current_step(page).locator(".step-label")).to_be_focused()
    app.assert_no_reload()
    (write,) = app.writes(source)
    assert (write.method, write.path, write.body, write.status) == (
        "PATCH",
        DEAL_PATH[source].format(deal_id),
        STAGE_BODY[source](stage_id),
        200,
    )


def test_marking_a_stora_deal_lost_with_a_reason_then_reopening_it_to_a_chosen_stage(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("stora")
    app.mark_page()
    app.sandbox.clear_log()

    page.get_by_role("button", name="Mark lost").click()
    reason = page.get_by_role("combobox", name="Lost reason")
    expect(reason).to_be_focused()
    reason.select_option("price_concerns")
    page.get_by_role("button", name="Confirm lost").click()

    expect(status_badge(page)).to_have_text("Lost")
    expect(page.locator("#deal-state")).to_contain_text("Price concerns")
    (lose,) = app.writes("stora")
    assert (lose.method, lose.path, lose.body) == (
        "POST",
        f"/2025-09/deals/{deal_id}/lose",
        {"lost_reason": "price_concerns"},
    )
    app.sandbox.clear_log()

    page.get_by_role("button", name="Reopen", exact=True).click()
    expect(page.get_by_role("button", name="Reopen deal")).to_be_visible()
    stage_id, stage_name = choose_other_option(page.get_by_role("combobox", name="Stage"))
    assignee_id, assignee_name = choose_other_option(page.get_by_role("combobox", name="Assignee"))
    page.get_by_role("button", name="Reopen deal").click()

    expect(status_badge(page)).to_have_text("Open")
    expect(current_step(page)).to_contain_text(stage_name)
    expect(page.get_by_role("button", name="Mark lost")).to_be_visible()
    expect(page.locator("#field-assignee")).to_contain_text(assignee_name)
    history = page.get_by_role("region", name="History")
    expect(history.get_by_role("listitem")).to_have_count(2)
    app.assert_no_reload()
    (reopen,) = app.writes("stora")
    assert (reopen.method, reopen.path, reopen.body) == (
        "POST",
        f"/2025-09/deals/{deal_id}/reopen",
        {"stage": {"id": stage_id}, "assignee": {"id": assignee_id}},
    )


def test_reopening_a_lost_nodestash_deal_moves_it_to_the_chosen_open_stage(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("nodestash", status="lost")
    expect(status_badge(page)).to_have_text("Lost")
    app.mark_page()
    app.sandbox.clear_log()

    page.get_by_role("button", name="Reopen", exact=True).click()
    expect(page.get_by_role("button", name="Reopen deal")).to_be_visible()
    expect(page.get_by_role("combobox", name="Assignee")).to_have_count(0)
    stage_id, stage_name = choose_other_option(page.get_by_role("combobox", name="Stage"))
    page.get_by_role("button", name="Reopen deal").click()

    expect(status_badge(page)).to_have_text("Open")
    expect(current_step(page)).to_contain_text(stage_name)
    app.assert_no_reload()
    (patch,) = app.writes("nodestash")
    assert (patch.method, patch.path, patch.body) == (
        "PATCH",
        f"/v1/deals/{deal_id}",
        {"stage_id": stage_id},
    )


def test_marking_a_nodestash_deal_lost_asks_which_lost_stage_when_there_are_several(app):
    page = app.page
    app.login()
    # The demo's "Partnerships" pipeline has two lost stages.
    deal_id = app.open_deal("nodestash", name="Brightwell Partners — referral programme")
    expect(page.get_by_text("nodestash · Partnerships")).to_be_visible()
    app.sandbox.clear_log()

    page.get_by_role("button", name="Mark lost").click()
    lost_stage = page.get_by_role("combobox", name="Lost stage")
    stage_id, stage_name = choose_other_option(lost_stage)
    page.get_by_role("button", name="Confirm lost").click()

    expect(status_badge(page)).to_have_text("Lost")
    expect(current_step(page)).to_contain_text(stage_name)
    (patch,) = app.writes("nodestash")
    assert (patch.path, patch.body) == (f"/v1/deals/{deal_id}", {"stage_id": stage_id})
