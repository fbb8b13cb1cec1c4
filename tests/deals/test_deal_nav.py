"""Previous and Next on a deal page follow the list page the user came from (its querystring
arrives as ``?from=``), from the order remembered when that page was rendered."""

from __future__ import annotations

import re

import pytest
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
