"""List journeys of the board issue in Chromium: the stale marker and filter, saving and reopening
a view, and a bulk stage change over mixed results. Each checks what the sandbox received."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from dealdesk.deals.services import DealFilters, deal_list

CONTACTED = "Contacted"


def list_calls(app, provider: str):
    path = "/2025-09/deals" if provider == "stora" else "/v1/deals"
    return [r for r in app.sandbox.requests(provider) if r.method == "GET" and r.path == path]


def test_stale_only_marks_and_keeps_stale_open_deals(app):
    page = app.page
    app.login()
    rows = page.get_by_role("table").locator("tbody tr")
    app.sandbox.clear_log()

    page.get_by_label("Stale only").check()

    expect(page).to_have_url(re.compile(r"[?&]stale=1"))
    expect(rows.first).to_be_visible()
    count = rows.count()
    markers = page.get_by_role("table").get_by_role("img", name=re.compile(r"^Stale: not updated"))
    expect(markers).to_have_count(count)
    for status in page.locator("tbody td[data-label=Status]").all_inner_texts():
        assert status == "Open"
    assert app.sandbox.requests() == []  # filtered in the synced store


def test_saving_a_view_and_reopening_it_later(app):
    page = app.page
    app.login()
    page.get_by_label("Source").select_option(label="nodestash")
    page.get_by_label("Status").select_option(label="Open")
    expect(page).to_have_url(re.compile(r"status=open"))

    menu = page.locator("summary", has_text="Saved views")
    menu.click()  # saved views are a menu beside the filters
    page.get_by_label("View name").fill("Open nodestash")
    page.get_by_role("button", name="Save view").click()

    saved = page.get_by_role("region", name="Saved views")
    expect(saved.locator(".saved-note")).to_have_text("Saved “Open nodestash”.")
    expect(page.locator("#live-status")).to_have_text("Saved “Open nodestash”.")
    link = saved.get_by_role("link", name="Open nodestash")
    expect(link).to_have_attribute("href", "/deals/?status=open&source=nodestash")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deals").click()
    expect(page.get_by_label("Source")).to_have_value("")
    app.sandbox.clear_log()
    menu.click()
    saved.get_by_role("link", name="Open nodestash").click()

    expect(page).to_have_url(re.compile(r"/deals/\?status=open&source=nodestash$"))
    expect(page.get_by_label("Source")).to_have_value("nodestash")
    expect(page.get_by_label("Status")).to_have_value("open")
    sources = set(page.locator("tbody td[data-label=Source]").all_inner_texts())
    assert sources == {"nodestash"}
    assert list_calls(app, "nodestash") == list_calls(app, "stora") == []  # from the store


def test_a_bulk_stage_change_over_mixed_results_shows_each_row(app):
    page = app.page
    app.login()
    deals = [
        d
        for d in deal_list(filters=DealFilters(source="stora", status="open"), page_size=50).deals
        if d.stage and d.stage.name == "New enquiry"
    ][:3]
    page.goto(f"{app.url}/deals/?source=stora&status=open")
    for deal in deals:
        page.get_by_label(f"Select {deal.name}", exact=True).first.check()
    stages = {
        s.name: s.id
        for s in deal_list(filters=DealFilters(source="stora"), page_size=1).stage_choices
    }
    # Someone else moves one of them meanwhile: that row must fail, the others still save.
    app.sandbox.mutate_deal("stora", deals[1].id, {"stage": {"id": stages["Quote sent"]}})
    app.sandbox.clear_log()
    app.sandbox.set_latency("stora", 150)

    page.get_by_label("Bulk action").select_option(label="Change stage")
    page.get_by_label("New stage").select_option(label=CONTACTED)
    page.get_by_role("button", name="Apply to selected").click()

    expect(page.locator("#bulk-progress")).to_be_visible()  # progress while the writes run
    results = page.get_by_role("region", name="Results for the selected deals")
    expect(results.locator(".bulk-summary")).to_have_text("2 of 3 saved, 1 failed.")
    expect(page.locator("#live-status")).to_have_text("2 saved, 1 failed")  # announced once
    expect(results.get_by_role("alert")).to_contain_text("1 deal not changed")
    items = results.get_by_role("listitem")
    expect(items).to_have_count(3)
    expect(items.filter(has_text=deals[0].name)).to_contain_text("Saved")
    expect(items.filter(has_text=deals[2].name)).to_contain_text("Saved")
    expect(items.filter(has_text=deals[1].name)).to_contain_text(
        re.compile(r"Failed: .*changed in Stora since you loaded this deal")
    )
    expect(page.locator("#bulk-progress")).to_be_hidden()
    sent = app.writes("stora")
    assert [(r.method, r.path, r.body) for r in sent] == [
        ("PATCH", f"/2025-09/deals/{d.id}", {"stage": {"id": stages[CONTACTED]}})
        for d in (deals[0], deals[2])
    ]
