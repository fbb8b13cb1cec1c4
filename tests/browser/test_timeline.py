"""Timeline journeys in Chromium against the sandbox: add a note and a task by keyboard, a task
refused for want of a due date, mark a task done, next-step badges on the list and the board and
the "No next step" filter, and a Stora deal's timeline. Each write checks exactly what nodestash
received; each new screen or state passes an axe scan."""

from __future__ import annotations

import re

from django.utils import timezone
from playwright.sync_api import expect

from dealdesk.sync.models import SyncedActivity, SyncedDeal
from tests.browser.axe import assert_accessible
from tests.browser.conftest import PASSWORD

PHONE = {"width": 390, "height": 844}


def a_deal_name(next_step_state: str) -> str:
    """An open nodestash deal of the demo seed with that next step, by a name no other has."""
    rows = SyncedDeal.objects.filter(
        connection__slug="nodestash", deleted=False, status="open", next_step_state=next_step_state
    )
    names = list(SyncedDeal.objects.values_list("name", flat=True))
    return next(row.name for row in rows if names.count(row.name) == 1)


def test_adding_a_note_by_keyboard_posts_it_and_puts_it_on_the_timeline(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("nodestash")
    app.mark_page()
    assert_accessible(page, "deal page with its timeline and both forms, 1280")
    app.sandbox.clear_log()

    note = page.locator("#note-form")
    note.get_by_label("Subject").focus()
    page.keyboard.type("Call with the buyer")
    page.keyboard.press("Tab")
    page.keyboard.type("They want a pilot first.")
    page.keyboard.press("Tab")
    expect(note.get_by_role("button", name="Add note")).to_be_focused()
    page.keyboard.press("Enter")

    history = page.get_by_role("region", name="History")
    expect(history.locator(".activity-subject").first).to_have_text("Call with the buyer")
    expect(history).to_contain_text("They want a pilot first.")
    expect(history).to_contain_text("Add note")  # the audit entry, interleaved
    expect(page.locator("#timeline-add [data-saved]")).to_have_text("Note added.")
    expect(page.locator("#live-status")).to_have_text("Note added.")
    expect(page.locator("#note-form").get_by_label("Subject")).to_be_focused()
    expect(page.locator("#note-form").get_by_label("Subject")).to_have_value("")
    app.assert_no_reload()
    (post,) = app.writes("nodestash")
    assert (post.method, post.path, post.status) == ("POST", "/v1/activities", 201)
    assert post.body == {
        "type": "note",
        "subject": "Call with the buyer",
        "deal_id": deal_id,
        "body": "They want a pilot first.",
    }
    assert re.fullmatch(r"[0-9a-f]{32}", post.headers["idempotency-key"])
    assert_accessible(page, "note added, 1280")


def test_a_task_without_due_date_is_refused_then_added_as_the_next_step(app):
    page = app.page
    app.login()
    name = a_deal_name("none")
    deal_id = app.open_deal("nodestash", name=name)
    next_step = page.get_by_role("region", name="Next step")
    expect(next_step).to_contain_text("No next step")
    app.mark_page()
    app.sandbox.clear_log()

    task = page.locator("#task-form")
    task.get_by_label("Subject").fill("Send the contract")
    task.get_by_role("button", name="Add task").click()

    due = page.locator("#task-form").get_by_label("Due date")
    expect(page.locator("#task-due_date-error")).to_have_text("Enter the date it is due.")
    expect(due).to_have_attribute("aria-invalid", "true")
    expect(due).to_be_focused()
    expect(page.locator("#task-form").get_by_label("Subject")).to_have_value("Send the contract")
    assert app.writes("nodestash") == []
    assert_accessible(page, "task form with its error, 1280")

    today = timezone.localdate()
    due.fill(today.isoformat())
    page.locator("#task-form").get_by_role("button", name="Add task").click()

    expect(next_step).to_contain_text("Due today: Send the contract")
    history = page.get_by_role("region", name="History")
    expect(history.locator(".activity-subject").first).to_have_text("Send the contract")
    expect(history.get_by_role("button", name="Mark done: Send the contract")).to_be_visible()
    app.assert_no_reload()
    (post,) = app.writes("nodestash")
    assert post.body == {
        "type": "task",
        "subject": "Send the contract",
        "deal_id": deal_id,
        "due_date": today.isoformat(),
    }
    app.screenshot("deal-timeline.png")

    # The list knows at once: the deal is no longer among those with no next step.
    page.goto(f"{app.url}/deals/?no_next_step=1")
    expect(page.get_by_role("heading", name="Deals")).to_be_visible()
    expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)


def test_marking_a_task_done_patches_it_and_updates_the_next_step(app):
    page = app.page
    app.login()
    name = a_deal_name("planned")
    deal_id = app.open_deal("nodestash", name=name)
    task = (
        SyncedActivity.objects.filter(deal_id=deal_id, is_done=False, deleted=False)
        .exclude(kind="note")
        .order_by("due_date")
        .first()
    )
    app.mark_page()
    app.sandbox.clear_log()

    page.get_by_role("button", name=f"Mark done: {task.subject}").click()

    history = page.get_by_role("region", name="History")
    expect(history.locator("[data-saved]")).to_have_text("Marked done.")
    expect(page.locator("#live-status")).to_have_text("Marked done.")
    entry = history.locator(f'[data-activity="{task.upstream_id}"]')
    expect(entry.locator(".activity-state")).to_have_text("Done")
    expect(entry.get_by_role("button")).to_have_count(0)
    expect(history).to_contain_text("Complete task")
    app.assert_no_reload()
    (patch,) = app.writes("nodestash")
    assert (patch.method, patch.path, patch.body, patch.status) == (
        "PATCH",
        f"/v1/activities/{task.upstream_id}",
        {"is_done": True},
        200,
    )
    assert_accessible(page, "task marked done, 1280")
    remaining = SyncedDeal.objects.get(upstream_id=deal_id).next_step_state
    expected = "No next step" if remaining == "none" else ":"
    expect(page.locator("#timeline-next-step")).to_contain_text(expected)  # in place
    expect(page.locator("#timeline-next-step")).not_to_contain_text(task.subject)
    app.assert_no_reload()
    page.reload()
    expect(page.get_by_role("region", name="Next step")).to_contain_text(expected)


def test_list_rows_show_next_steps_and_no_next_step_is_one_click_away(app):
    page = app.page
    app.login()
    page.goto(f"{app.url}/deals/?source=nodestash&status=open")
    table = page.get_by_role("table")
    for words in ("Overdue: ", "Due today: ", "Planned: ", "No next step"):
        expect(table.get_by_text(words).first).to_be_visible()
    overdue = table.locator(".next-step-overdue").first
    expect(overdue).to_have_css("color", "rgb(179, 38, 30)")  # red, and says so in words
    assert_accessible(page, "list with next steps, 1280")
    app.mark_page()
    app.sandbox.clear_log()

    page.get_by_label("No next step").check()

    expect(page).to_have_url(re.compile(r"no_next_step=1"))
    badges = page.locator("tbody td[data-label=Name] .next-step")
    expect(badges.first).to_be_visible()
    expected = SyncedDeal.objects.filter(
        connection__slug="nodestash", status="open", next_step_state="none"
    ).count()
    expect(page.locator("#result-count")).to_contain_text(f"of {expected}")
    assert set(badges.all_inner_texts()) == {"⚠ No next step"}
    app.assert_no_reload()
    assert app.sandbox.requests() == []  # a filter is a query on the store
    assert_accessible(page, "list filtered to no next step, 1280")


def test_board_cards_show_the_next_step(app):
    page = app.page
    app.login()
    row = SyncedDeal.objects.filter(
        connection__slug="nodestash", status="open", next_step_state="none"
    ).first()
    page.goto(f"{app.url}/board/?pipeline=nodestash:{row.pipeline_id}")
    page.get_by_role("heading", name="Pipeline board").wait_for()

    card = page.locator(f'[data-deal-key="nodestash:{row.upstream_id}"]')
    expect(card.locator(".next-step")).to_have_text("⚠ No next step")
    expect(page.locator(".board-card .next-step").filter(has_text=":").first).to_be_visible()
    assert_accessible(page, "board with next steps, 1280")


def test_a_stora_deal_timeline_says_why_it_has_no_notes_or_tasks(app):
    page = app.page
    app.login()
    app.open_deal("stora")

    history = page.get_by_role("region", name="History")
    expect(history).to_contain_text("Stora's API offers no notes or tasks")
    expect(page.locator("#note-form")).to_have_count(0)
    assert_accessible(page, "Stora deal timeline, 1280")


def test_the_timeline_on_a_phone(app):
    page = app.page
    app.login()
    page.set_viewport_size(PHONE)
    app.open_deal("nodestash", name=a_deal_name("planned"))

    expect(page.get_by_role("region", name="Next step")).to_be_visible()
    expect(page.locator("#task-form").get_by_label("Subject")).to_be_visible()
    assert_accessible(page, "deal page with its timeline, 390")
    page.locator("#task-form").get_by_role("button", name="Add task").click()
    expect(page.locator("#task-subject-error")).to_be_visible()
    assert_accessible(page, "task form with its errors, 390")


def test_a_task_added_by_someone_else_reaches_the_open_deal_page_without_a_reload(app, browser):
    page = app.page
    app.login()
    name = a_deal_name("none")
    deal_id = app.open_deal("nodestash", name=name)
    next_step = page.locator("#timeline-next-step")
    expect(next_step).to_have_text("⚠ No next step")
    app.mark_page()

    # Someone else, in another window, adds a task to the same deal.
    other = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        theirs = other.new_page()
        theirs.goto(f"{app.url}/accounts/login/")
        theirs.get_by_label("Username").fill("sales")
        theirs.get_by_label("Password").fill(PASSWORD)
        theirs.get_by_role("button", name="Log in").click()
        theirs.get_by_role("heading", name="Deals").wait_for()
        theirs.goto(f"{app.url}/deals/nodestash/{deal_id}/")
        form = theirs.locator("#task-form")
        form.get_by_label("Subject").fill("Ring the CFO")
        form.get_by_label("Due date").fill(timezone.localdate().isoformat())
        form.get_by_role("button", name="Add task").click()
        expect(theirs.locator("#timeline-next-step")).to_contain_text("Ring the CFO")
    finally:
        other.close()

    expect(next_step).to_have_text("Due today: Ring the CFO")
    history = page.get_by_role("region", name="History")
    expect(history.locator(".activity-subject").first).to_have_text("Ring the CFO")
    app.assert_no_reload()
