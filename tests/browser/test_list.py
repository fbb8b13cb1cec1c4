"""Journeys on the deal list: logging in, filtering, paging, a source that is down, viewers."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from dealdesk.connections.models import Connection
from dealdesk.sync.engine import sync_run

COLUMNS = ["Name", "Source", "Stage", "Status", "Value", "Owner", "Updated"]


def row_names(page) -> list[str]:
    return page.get_by_role("table").locator("tbody td[data-label=Name] a").all_inner_texts()


def row_deal_urls(page) -> list[str]:
    links = page.get_by_role("table").locator("tbody td[data-label=Name] a")
    return [href.split("?")[0] for href in links.evaluate_all("links => links.map(a => a.href)")]


def list_reads(app, provider: str) -> list:
    return [
        r for r in app.sandbox.requests(provider) if r.method == "GET" and r.path.endswith("/deals")
    ]


def test_logging_in_shows_deals_from_both_sources_and_pages_on(app):
    page = app.page

    app.login()

    expect(page.get_by_role("heading", level=1)).to_have_text("Deals")
    for column in COLUMNS:
        expect(page.get_by_role("columnheader", name=column)).to_be_visible()
    table = page.get_by_role("table")
    expect(table.get_by_role("cell", name="Stora", exact=True).first).to_be_visible()
    expect(table.get_by_role("cell", name="nodestash", exact=True).first).to_be_visible()
    assert app.sandbox.requests() == []  # read from the synced store
    expect(page.locator("#result-count")).to_contain_text(" of ")
    first_page = row_deal_urls(page)
    app.mark_page()

    page.get_by_role("link", name="Next").click()

    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.get_by_role("link", name="Previous")).to_be_visible()
    second_page = row_deal_urls(page)
    assert second_page and not set(second_page) & set(first_page)
    app.assert_no_reload()


def test_filtering_by_status_and_search_lands_in_the_url_and_survives_a_reload(app):
    page = app.page
    app.login()
    app.mark_page()
    app.sandbox.clear_log()

    page.get_by_role("combobox", name="Status").select_option(label="Open")
    expect(page).to_have_url(re.compile(r"status=open"))
    page.get_by_role("searchbox", name="Search").fill("Müller")
    expect(page).to_have_url(re.compile(r"q=M%C3%BCller"))

    table = page.get_by_role("table")
    expect(table.locator("tbody tr").first).to_contain_text("Müller")
    names = row_names(page)
    assert names and all("Müller" in name for name in names)
    expect(table.locator("tbody").get_by_text("Won", exact=True)).to_have_count(0)
    expect(table.locator("tbody").get_by_text("Lost", exact=True)).to_have_count(0)
    app.assert_no_reload()
    assert app.sandbox.requests() == []  # filtered in the store

    page.reload()

    expect(page.get_by_role("combobox", name="Status")).to_have_value("open")
    expect(page.get_by_role("searchbox", name="Search")).to_have_value("Müller")
    expect(table.locator("tbody tr")).to_have_count(len(names))
    assert row_names(page) == names


def test_a_source_that_is_down_is_named_and_its_last_known_deals_still_show(app):
    page = app.page
    app.sandbox.set_outage("nodestash", True)
    sync_run(Connection.objects.get(slug="nodestash"))  # the worker's poll fails
    sync_run(Connection.objects.get(slug="stora"))
    assert app.sandbox.requests("nodestash"), "DealDesk did try nodestash"
    assert all(r.status == 0 for r in app.sandbox.requests("nodestash"))  # dropped connections

    app.login()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Showing nodestash deals as of")
    expect(alert).to_contain_text("nodestash cannot be reached")
    expect(alert).not_to_contain_text("Stora")
    sources = page.get_by_role("table").locator("tbody td[data-label=Source]")
    expect(sources.first).to_be_visible()
    assert set(sources.all_inner_texts()) == {"Stora", "nodestash"}


def test_a_viewer_reads_a_deal_but_is_offered_no_change(app):
    page = app.page
    app.login("viewer")

    app.open_deal("stora")

    expect(page.get_by_role("heading", name="Details")).to_be_visible()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    for button in ("Edit Name", "Move to", "Mark won", "Mark lost"):  # no stage bar button
        expect(page.get_by_role("button", name=button)).to_have_count(0)
    assert app.writes("stora") == [] and app.writes("nodestash") == []
