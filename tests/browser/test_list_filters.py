"""Journeys through the list's sharper filters in Chromium: value range and a typo in it, "My
deals" through an owner link, "Closing this month", columns hidden and remembered in a saved
view, and the CSV export's download with every row. Each new state passes an axe scan, and none
of it calls upstream."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

from django.contrib.auth.models import User
from playwright.sync_api import expect

from dealdesk.connections.models import Connection
from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.listtools.models import OwnerLink
from dealdesk.sync.store import reference_load
from tests.browser.axe import assert_accessible


def table_headers(page) -> list[str]:
    cells = page.locator("#deal-table thead th").all_text_contents()
    return [cell.strip() for cell in cells if cell.strip() and cell.strip() != "Select"]


def test_value_range_filters_in_place_and_a_typo_is_named_and_kept(app):
    page = app.page
    app.login()
    app.mark_page()

    page.locator("summary", has_text="More filters").click()
    page.get_by_label("Minimum value").fill("20000")
    page.get_by_label("Maximum value").fill("40000")
    page.get_by_label("Maximum value").press("Tab")

    expect(page).to_have_url(re.compile(r"value_min=20000&value_max=40000"))
    values = page.locator("tbody td[data-label=Value]")
    expect(values.first).to_be_visible()
    for text in values.all_inner_texts():
        amount = Decimal(re.sub(r"[^\d.]", "", text))
        assert Decimal(20000) <= amount <= Decimal(40000), text
    app.assert_no_reload()
    assert app.sandbox.requests() == []  # filtered in the synced store
    assert_accessible(page, "list filtered by a value range")

    page.get_by_label("Maximum value").fill("200")
    page.get_by_label("Maximum value").press("Tab")

    problem = page.get_by_role("alert").filter(has_text="Some filters were not applied")
    expect(problem).to_contain_text("The maximum value is less than the minimum")
    expect(page.get_by_label("Minimum value")).to_have_value("20000")
    expect(page.get_by_label("Maximum value")).to_have_value("200")
    everything = deal_list(filters=DealFilters()).total_count
    expect(page.locator("#result-count")).to_contain_text(f"of {everything}")
    assert_accessible(page, "a value range the list could not use")


def test_my_deals_shows_the_deals_of_the_linked_staff_member(app):
    page = app.page
    stora = Connection.objects.get(slug="stora")
    member = reference_load(stora).staff[0]
    OwnerLink.objects.create(
        user=User.objects.get(username="sales"), connection=stora, owner_id=member.value
    )
    app.login()

    page.get_by_label("Owner").select_option(label="My deals")

    expect(page).to_have_url(re.compile(r"owner=me"))
    owners = page.locator("tbody td[data-label=Owner]")
    expect(owners.first).to_have_text(member.label)
    assert set(owners.all_inner_texts()) == {member.label}
    assert_accessible(page, "My deals")


def test_my_deals_without_a_link_says_who_can_set_it_up(app):
    page = app.page
    app.login()
    page.get_by_label("Owner").select_option(label="My deals")
    expect(page.get_by_role("alert")).to_contain_text("nobody has linked you yet")
    assert_accessible(page, "My deals without an owner link")


def test_closing_this_month_is_one_click_and_shows_the_close_dates(app):
    page = app.page
    app.login()
    page.get_by_text("Columns", exact=True).click()
    page.get_by_role("link", name="Show Expected close").click()
    expect(page.locator("#deal-table thead")).to_contain_text("Expected close")

    page.get_by_label("Closing this month").check()

    expect(page).to_have_url(re.compile(r"closing=month"))
    dates = page.locator("tbody td[data-label='Expected close'] time")
    expect(dates.first).to_be_visible()
    month = page.evaluate("new Date().toISOString().slice(0, 7)")
    for stamp in dates.evaluate_all("nodes => nodes.map(n => n.getAttribute('datetime'))"):
        assert stamp.startswith(month), stamp
    assert_accessible(page, "closing this month with close dates")


def test_hidden_columns_are_remembered_in_a_saved_view(app):
    page = app.page
    app.login()
    page.get_by_text("Columns", exact=True).click()
    page.get_by_role("link", name="Hide Stage").click()
    expect(page.locator("#deal-table thead")).not_to_contain_text("Stage")
    page.get_by_role("link", name="Show Tags").click()
    expect(page.locator("#deal-table thead")).to_contain_text("Tags")
    shown = table_headers(page)
    assert "Stage" not in shown and "Tags" in shown
    assert_accessible(page, "columns hidden and shown")

    menu = page.locator("summary", has_text="Saved views")
    menu.click()
    page.get_by_label("View name").fill("No stages")
    page.get_by_role("button", name="Save view").click()
    saved = page.get_by_role("region", name="Saved views")
    expect(saved.locator(".saved-note")).to_have_text("Saved “No stages”.")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deals").click()
    expect(page.locator("#deal-table thead")).to_contain_text("Stage")
    menu.click()
    saved.get_by_role("link", name="No stages").click()

    expect(page.locator("#deal-table thead")).to_contain_text("Tags")
    assert table_headers(page) == shown


def test_export_downloads_every_row_of_the_filtered_list(app):
    page = app.page
    app.login()
    page.get_by_label("Status").select_option(label="Open")
    expect(page).to_have_url(re.compile(r"status=open"))
    total = deal_list(filters=DealFilters(status="open")).total_count
    assert total > 25  # more than one page

    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile(r"^Export CSV")).click()

    body = download.value.path().read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert table[0][:3] == ["Name", "Source", "Stage"]
    assert len(table) - 1 == total
    status = table[0].index("Status")
    assert {row[status] for row in table[1:]} == {"Open"}
    assert download.value.suggested_filename.endswith(".csv")
    assert app.sandbox.requests() == []
