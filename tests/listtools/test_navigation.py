"""Previous and Next on a deal page follow the list page the user came from (its querystring
arrives as ``?from=``), from the order remembered when that page was rendered."""

from __future__ import annotations

import re

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db


def detail_links(html: str) -> list[str]:
    return re.findall(r'<td class="cell-name" data-label="Name"><a href="([^"]+)"', html)


def test_previous_and_next_follow_the_filtered_list(sales_client):
    html = sales_client.get(reverse("deals:list"), {"status": "open", "stale": "1"}).content
    links = [link.replace("&amp;", "&") for link in detail_links(html.decode())]
    assert len(links) >= 3

    middle = sales_client.get(links[1]).content.decode()
    nav = re.search(r'<nav class="deal-nav" aria-label="Deal navigation">.*?</nav>', middle, re.S)
    hrefs = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', nav.group(0))]
    assert hrefs == [links[0], links[2]]
    assert 'rel="prev">Previous</a>' in nav.group(0) and 'rel="next">Next</a>' in nav.group(0)


def test_the_first_row_has_no_previous_and_an_unknown_list_no_nav(sales_client):
    html = sales_client.get(reverse("deals:list")).content.decode()
    first = detail_links(html)[0].replace("&amp;", "&")
    page = sales_client.get(first).content.decode()
    assert ">Next</a>" in page and ">Previous</a>" not in page

    bare = first.split("?")[0] + "?from=q%3Dnothing-like-this"
    assert "Deal navigation" not in sales_client.get(bare).content.decode()


def nav_links(html: str) -> dict[str, str]:
    nav = re.search(r'<nav class="deal-nav" aria-label="Deal navigation">.*?</nav>', html, re.S)
    found = re.findall(r'<a href="([^"]+)" rel="(prev|next)">', nav.group(0)) if nav else []
    return {rel: href.replace("&amp;", "&") for href, rel in found}


def test_next_and_previous_cross_the_edge_of_a_list_page(sales_client, settings, sandbox):
    settings.DEALDESK_PAGE_SIZE = 3
    first_page = sales_client.get(reverse("deals:list"), {"status": "open"}).content.decode()
    page_one = [link.replace("&amp;", "&") for link in detail_links(first_page)]
    last_on_page_one = sales_client.get(page_one[-1]).content.decode()

    step = nav_links(last_on_page_one)["next"]
    assert step.startswith(reverse("deals:nav_step"))
    sandbox.clear_log()
    opened = sales_client.get(step, follow=True)

    # The next page of the same filtered list was loaded once (one call per source), and its
    # first deal opened (one call): not a walk over the whole list.
    assert opened.status_code == 200
    assert len(sandbox.requests()) <= 4
    first_of_page_two = opened.redirect_chain[-1][0]
    assert first_of_page_two.split("?")[0] not in [link.split("?")[0] for link in page_one]

    # And Previous from there goes back across the edge to the last deal of page one.
    back = nav_links(opened.content.decode())["prev"]
    assert back.startswith(reverse("deals:nav_step"))
    returned = sales_client.get(back, follow=True)
    assert returned.redirect_chain[-1][0].split("?")[0] == page_one[-1].split("?")[0]


def test_a_step_past_the_end_of_the_list_goes_back_to_the_list(sales_client):
    response = sales_client.get(
        reverse("deals:nav_step"), {"from": "q=nothing-like-this", "pick": "first"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("deals:list") + "?q=nothing-like-this"


def session_writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('UPDATE "django_session"')]


def test_the_same_list_page_again_does_not_write_the_session(sales_client):
    sales_client.get(reverse("deals:list"), {"status": "open"})
    with CaptureQueriesContext(db_connection) as again:
        sales_client.get(reverse("deals:list"), {"status": "open"})
    with CaptureQueriesContext(db_connection) as other:
        sales_client.get(reverse("deals:list"), {"status": "won"})
    with CaptureQueriesContext(db_connection) as back:
        sales_client.get(reverse("deals:list"), {"status": "open"})

    assert session_writes(again.captured_queries) == []  # nothing new to remember
    assert len(session_writes(other.captured_queries)) == 1
    assert len(session_writes(back.captured_queries)) == 1  # now the most recent page again
