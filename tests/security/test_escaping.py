"""Deal names and every other string from upstream render as text: HTML in them is escaped on
the list, the detail page and in the history."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse

from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.sync.engine import sync_run

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
HTMX = {"HTTP_HX_REQUEST": "true"}


def assert_escaped(html: str) -> None:
    assert HOSTILE not in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert ESCAPED in html


def open_deal(source: str):
    return deal_list(filters=DealFilters(source=source, status="open"), page_size=1).deals[0]


def test_html_in_upstream_strings_shows_as_text_on_list_and_detail(sales_client, sandbox, resync):
    stora, nodestash = open_deal("stora"), open_deal("nodestash")
    sandbox.mutate_deal("stora", stora.id, {"name": HOSTILE, "note": HOSTILE})
    sandbox.mutate_deal("nodestash", nodestash.id, {"title": HOSTILE, "tags": [HOSTILE]})
    resync()

    listing = sales_client.get(reverse("deals:list"), {"sort": "-updated"}).content.decode()
    assert_escaped(listing)
    assert listing.count(ESCAPED) >= 2  # one row per source

    for deal in (stora, nodestash):
        detail = sales_client.get(reverse("deals:detail", args=[deal.connection_slug, deal.id]))
        html = detail.content.decode()
        assert_escaped(html)
        assert f"<title>{ESCAPED} · DealDesk</title>" in html


def test_html_typed_into_a_name_is_escaped_in_the_saved_field_and_the_history(
    sales_client, sandbox
):
    deal = open_deal("nodestash")
    detail_url = reverse("deals:detail", args=["nodestash", deal.id])
    save_url = reverse("deals:field_save", args=["nodestash", deal.id, "name"])
    page = sales_client.get(detail_url, {"edit": "name"}).content.decode()
    data = {
        name: html_lib.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }
    saved = sales_client.post(save_url, {**data, "name": HOSTILE}, **HTMX).content.decode()
    assert_escaped(saved)

    history = sales_client.get(detail_url).content.decode().split('id="history"')[1]
    assert_escaped(history)


def test_an_upstream_error_message_is_escaped_too(sales_client, sandbox, connections):
    deal = open_deal("nodestash")
    detail_url = reverse("deals:detail", args=["nodestash", deal.id])
    refresh_url = reverse("deals:refresh", args=["nodestash", deal.id])
    hostile = {"error": {"code": "CONFLICT", "message": HOSTILE}}

    # Read live by the Refresh button: its message on the page.
    sandbox.fail_next("nodestash", 5, 409, hostile)
    refreshed = sales_client.post(refresh_url, follow=True).content.decode()
    assert_escaped(refreshed)

    # Read by the sync: its alert on the list and the deal page (which may word the failure
    # without the vendor's message, but never lets it through as markup).
    sandbox.fail_next("nodestash", 5, 409, hostile)
    assert sync_run(connections["nodestash"]).error
    for url in (reverse("deals:list"), detail_url):
        html = sales_client.get(url).content.decode()
        assert "Showing nodestash deals as of " in html
        assert HOSTILE not in html
        assert "<script>alert" not in html
        assert "<img src=x" not in html
