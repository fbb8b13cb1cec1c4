"""The deal list over both sandbox sources, through Django's test client: filters, sort, pages,
HTMX partials and what a user sees when a source fails."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.urls import reverse

from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.deals.templatetags.deal_format import money
from dealdesk.sync.engine import sync_run

pytestmark = pytest.mark.django_db

LIST = "/deals/"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Several pages per test: the per-second budgets are not under test here."""


def text_of(response) -> str:
    return response.content.decode()


def row_links(html: str) -> list[str]:
    return re.findall(r'<td class="cell-name" data-label="Name"><a href="([^"?]+)', html)


def row_names(html: str) -> list[str]:
    return re.findall(r'<td class="cell-name" data-label="Name"><a [^>]*>([^<]*)</a>', html)


def test_root_redirects_to_the_deal_list(sales_client):
    response = sales_client.get("/")

    assert response.status_code == 302
    assert response["Location"] == LIST


def test_list_requires_login(client, connections):
    response = client.get(LIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_list_shows_deals_of_both_sources_with_the_columns(sales_client):
    response = sales_client.get(LIST)
    html = text_of(response)

    assert response.status_code == 200
    assert "<h1>Deals</h1>" in html
    for header in ("Name", "Source", "Stage", "Status", "Value", "Owner", "Updated"):
        assert re.search(rf"<th scope=\"col\"[^>]*>(<a [^>]*>)?{header}<", html), header
    assert 'data-label="Source">Stora<' in html
    assert 'data-label="Source">nodestash<' in html
    assert "Showing 1–25" in html
    assert len(row_names(html)) == 25


def test_values_show_nodestash_amounts_with_currency_and_stora_estimates_verbatim(sales_client):
    page = deal_list(filters=DealFilters(), page_size=25)
    nodestash = next(d for d in page.deals if d.value is not None)
    stora = next(d for d in page.deals if d.value_text)

    html = text_of(sales_client.get(LIST))

    assert money(nodestash.value) in html
    assert re.search(r"[€$£]\d{1,3}(,\d{3})*\.\d\d|[A-Z]{3} \d", money(nodestash.value))
    # Stora's free text is shown under a label of its own, never as an amount.
    estimate = f'<span class="estimate-label">Estimate</span> {stora.value_text}</span>'
    assert estimate in html.replace("&#x27;", "'")


def test_statuses_read_open_won_or_lost_as_badges(sales_client):
    html = text_of(sales_client.get(LIST, {"status": "won"}))

    badges = re.findall(r'<span class="badge badge-(\w+)">(\w+)</span>', html)
    assert badges
    assert set(badges) == {("won", "Won")}


def test_html_in_a_deal_name_is_escaped(sales_client):
    html = text_of(sales_client.get(LIST, {"q": "script"}))

    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Bold &amp; Co" in html
    assert '<script>alert("x")' not in html


def test_each_name_links_to_its_detail_page_carrying_the_list_filters(sales_client):
    html = text_of(sales_client.get(LIST, {"status": "open", "source": "stora"}))

    link = re.search(r'<td class="cell-name" data-label="Name"><a href="([^"]+)"', html).group(1)
    path, query = link.split("?", 1)
    assert re.fullmatch(r"/deals/stora/[^/]+/", path)
    assert parse_qs(query.replace("&amp;", "&")) == {"from": ["status=open&source=stora"]}


def test_search_filters_by_name(sales_client):
    html = text_of(sales_client.get(LIST, {"q": "Nordlicht"}))

    names = row_names(html)
    assert names
    assert all("Nordlicht" in name for name in names)
    assert 'value="Nordlicht"' in html


def test_source_filter_shows_only_that_source_and_offers_its_stages(sales_client):
    html = text_of(sales_client.get(LIST, {"source": "nodestash"}))

    assert set(re.findall(r'data-label="Source">([^<]+)<', html)) == {"nodestash"}
    assert '<label for="filter-stage">Stage</label>' in html
    assert '<option value="nodestash" selected>nodestash</option>' in html


def test_stage_filter_is_absent_until_one_source_is_chosen(sales_client):
    html = text_of(sales_client.get(LIST))

    assert 'name="stage"' not in html


def test_stage_filter_keeps_only_deals_in_that_stage(sales_client):
    page = deal_list(filters=DealFilters(source="nodestash"), page_size=25)
    stage = page.deals[0].stage

    html = text_of(sales_client.get(LIST, {"source": "nodestash", "stage": stage.id}))

    assert set(re.findall(r'data-label="Stage">([^<]+)<', html)) == {stage.name}
    assert f'<option value="{stage.id}" selected>' in html


def test_filter_form_reloads_the_table_over_htmx_and_pushes_the_url(sales_client):
    html = text_of(sales_client.get(LIST))

    form = re.search(r'<form id="deal-filters"[^>]*>', html).group(0)
    assert 'hx-get="/deals/"' in form
    assert 'hx-target="#deal-table"' in form
    assert 'hx-push-url="true"' in form
    assert 'hx-trigger="input changed delay:300ms from:input[type=search], change"' in form
    assert 'hx-indicator="#list-loading"' in form
    assert 'method="get" action="/deals/"' in form
    assert '<input type="search" id="filter-q" name="q"' in html
    assert '<label for="filter-q">Search</label>' in html
    assert '<label for="filter-status">Status</label>' in html
    assert '<label for="filter-source">Source</label>' in html
    assert '<button type="submit" class="secondary">Apply</button>' in html


def test_htmx_request_gets_only_the_table_and_the_stage_filter_out_of_band(sales_client):
    response = sales_client.get(LIST, {"source": "stora"}, **HTMX)
    html = text_of(response)

    assert response.status_code == 200
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="deal-table"')
    assert '<div id="filter-extras" class="filter-extras" hx-swap-oob="true">' in html
    assert 'name="stage"' in html


def test_history_restore_gets_the_whole_page(sales_client):
    html = text_of(sales_client.get(LIST, **HTMX, HTTP_HX_HISTORY_RESTORE_REQUEST="true"))

    assert "<html" in html


def test_sort_by_name_orders_rows_and_marks_the_column(sales_client):
    html = text_of(sales_client.get(LIST, {"sort": "name"}))

    names = row_names(html)
    assert names == sorted(names, key=str.casefold) or names == sorted(names)
    assert re.search(r'<th scope="col" aria-sort="ascending"><a [^>]*>Name</a>', html)
    assert 'href="/deals/?sort=-name"' in html  # clicking again reverses
    assert '<input type="hidden" name="sort" value="name">' in html


def test_sort_links_are_htmx_links_with_real_hrefs(sales_client):
    html = text_of(sales_client.get(LIST, {"status": "open"}))

    for column, query in (
        ("Value", "status=open&amp;sort=-value"),
        ("Updated", "status=open&amp;sort=updated"),
    ):
        link = re.search(
            rf'<a class="sort[^"]*" href="([^"]+)" hx-get="([^"]+)"[^>]*>{column}</a>', html
        )
        assert link, column
        assert link.group(1) == link.group(2) == f"/deals/?{query}"


def test_next_and_previous_pages_use_a_page_number_in_the_url(sales_client):
    first = text_of(sales_client.get(LIST))
    next_href = re.search(r'<a href="([^"]+)"[^>]*rel="next">Next</a>', first).group(1)
    next_url = next_href.replace("&amp;", "&")
    assert parse_qs(urlsplit(next_url).query) == {"page": ["2"]}
    assert "cursor=" not in first
    assert "Previous" not in first
    total = deal_list(filters=DealFilters(), page_size=25).total_count

    second = text_of(sales_client.get(next_url))

    assert f"Showing 26–{min(50, total)} of {total}" in second
    assert row_links(second)
    assert not set(row_links(second)) & set(row_links(first))
    prev_href = re.search(r'<a href="([^"]+)"[^>]*rel="prev">Previous</a>', second).group(1)
    assert urlsplit(prev_href).path == LIST
    assert "Showing 1–25" in text_of(sales_client.get(prev_href.replace("&amp;", "&")))


def test_a_page_number_keeps_the_filters_and_one_past_the_end_shows_the_last_page(
    sales_client,
):
    result = deal_list(filters=DealFilters(status="open"), page_size=25)
    assert result.page_count >= 2, "the demo seed has more than one page of open deals"

    html = text_of(sales_client.get(LIST, {"status": "open", "page": result.page_count + 5}))

    assert f"of {result.total_count}" in html
    assert 'rel="next"' not in html
    prev_href = re.search(r'<a href="([^"]+)"[^>]*rel="prev">Previous</a>', html).group(1)
    assert "status=open" in prev_href


def test_totals_line_sums_numeric_values_per_currency_over_every_matching_deal(sales_client):
    page = deal_list(filters=DealFilters(), page_size=25)
    every = deal_list(filters=DealFilters(), page_size=100)
    assert every.total_count <= 100, "the demo seed fits one page of 100"
    sums: dict[str, Decimal] = {}
    for deal in every.deals:
        if deal.value is not None:
            sums[deal.value.currency] = sums.get(deal.value.currency, 0) + deal.value.amount

    html = text_of(sales_client.get(LIST))

    assert f"Total value of the {page.total_count} matching deals:" in html
    assert {t.currency: t.amount for t in page.totals} == sums
    for total in page.totals:
        assert f"<strong>{money(total)}</strong>" in html


def test_an_empty_result_says_what_to_change(sales_client):
    html = text_of(sales_client.get(LIST, {"q": "no deal is called this"}))

    assert "No deals match." in html
    assert "clear all filters" in html
    assert "Showing" not in html


def test_a_source_whose_sync_fails_is_named_in_an_alert_and_its_deals_still_show(
    sales_client, sandbox, connections
):
    sandbox.set_outage("nodestash", True)
    sync_run(connections["nodestash"])
    sandbox.clear_log()

    response = sales_client.get(LIST)
    html = text_of(response)

    assert response.status_code == 200
    alert = re.search(r'<div class="alert alert-error" role="alert">(.*?)</div>', html, re.S)
    assert alert
    assert "Showing nodestash deals as of " in alert.group(1)
    assert "nodestash cannot be reached" in alert.group(1)
    assert set(re.findall(r'data-label="Source">([^<]+)<', html)) == {"Stora", "nodestash"}
    assert sandbox.requests("nodestash") == [] and sandbox.requests("stora") == []


def revoke_key(sandbox, provider: str) -> None:
    """The source now refuses DealDesk's key (a changed key would be another account, whose
    store starts afresh)."""
    body = (
        {"error": {"code": "invalid_token", "message": "The access token is invalid."}}
        if provider == "stora"
        else {"error": {"code": "INVALID_API_KEY", "message": "Invalid API key."}}
    )
    sandbox.fail_next(provider, 5, 401, body)


def test_a_rejected_api_key_asks_for_an_admin_and_links_staff_to_the_connection(
    staff_client, connections, sandbox
):
    connection = connections["stora"]
    revoke_key(sandbox, "stora")
    assert sync_run(connection).error

    html = text_of(staff_client.get(LIST))

    admin_url = reverse("admin:connections_connection_change", args=[connection.pk])
    assert "Showing Stora deals as of " in html
    assert "admin must update" in html
    assert f'<a href="{admin_url}">Update the Stora connection</a>' in html
    assert 'data-label="Source">nodestash<' in html
    assert 'data-label="Source">Stora<' in html


def test_a_rejected_api_key_gives_no_admin_link_to_non_staff(viewer_client, connections, sandbox):
    revoke_key(sandbox, "nodestash")
    assert sync_run(connections["nodestash"]).error

    html = text_of(viewer_client.get(LIST))

    assert "admin must update" in html
    assert "/admin/" not in html.split('id="deal-table"')[1]


def test_a_rate_limited_sync_says_so_and_waits_for_the_vendor(sales_client, sandbox, connections):
    sandbox.fail_next(
        "nodestash",
        5,
        429,
        body={"error": {"code": "RATE_LIMITED", "message": "Slow down", "retry_after": 7}},
        headers={"Retry-After": "7"},
    )
    report = sync_run(connections["nodestash"])
    assert report.paused_until is not None

    html = text_of(sales_client.get(LIST))

    assert "Showing nodestash deals as of " in html
    assert "rate limiting DealDesk" in html and "7 s" in html
    assert 'data-label="Source">Stora<' in html
    assert 'data-label="Source">nodestash<' in html


def test_viewers_can_read_the_list(viewer_client):
    response = viewer_client.get(LIST)

    assert response.status_code == 200
    assert "Showing 1–25" in text_of(response)


def test_unknown_filter_values_fall_back_to_defaults(sales_client):
    response = sales_client.get(LIST, {"status": "bogus", "sort": "drop table"})

    assert response.status_code == 200
    assert "Showing 1–25" in text_of(response)


@pytest.mark.parametrize("query", [{}, {"source": "nodestash"}, {"source": "stora"}])
def test_a_list_view_asks_no_source_at_all_even_one_that_is_down(sales_client, sandbox, query):
    """The list, the bulk bar and the Stage filter all read the store: a source that is down
    is never asked (with a timeout, the page would wait for it)."""
    cache.clear()
    sandbox.set_outage("nodestash", True)
    sandbox.clear_log()

    response = sales_client.get(reverse("deals:list"), query)

    assert response.status_code == 200
    assert sandbox.requests("nodestash") == []
    assert sandbox.requests("stora") == []
