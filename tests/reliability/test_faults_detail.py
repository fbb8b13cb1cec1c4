"""The detail page and its edit forms under every upstream fault: an error page (or the field
block) with the problem in plain words in role="alert", never a 500; one upstream read per
view, retried only for 502/503/504 and at most twice; and the same page loads once it clears."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dealdesk.deals.services import DealFilters, deal_list
from tests.reliability.conftest import HTMX, alerts, text
from tests.reliability.faults import FAULTS, PROVIDERS, Fault

pytestmark = pytest.mark.django_db

MAX_CALLS = 3  # one GET of the deal and at most two retries (502/503/504 only)
NOT_FOUND_WORDS = "does not exist, or it was deleted in its source system"


def open_deal(provider: str):
    return deal_list(filters=DealFilters(source=provider, status="open"), page_size=1).deals[0]


def detail_url(deal) -> str:
    return reverse("deals:detail", args=[deal.connection_slug, deal.id])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_detail_page_shows_the_problem_and_recovers(
    sales_client, sandbox, settings, fault: Fault, provider: str
):
    deal = open_deal(provider)
    assert sales_client.get(detail_url(deal)).status_code == 200  # reference data is cached
    sandbox.clear_log()
    fault.inject(sandbox, settings, provider)

    response = sales_client.get(detail_url(deal))
    html = text(response)

    assert response.status_code == fault.page_status
    (alert,) = alerts(html)
    for words in fault.words or (NOT_FOUND_WORDS,) * (fault.page_status == 404):
        assert words in alert
    assert alert.strip()
    assert len(sandbox.requests(provider)) <= MAX_CALLS
    if fault.name == "http429":
        assert response["Retry-After"] in ("6", "7")

    Fault.clear(sandbox, settings, provider)
    recovered = sales_client.get(detail_url(deal))

    assert recovered.status_code == 200
    assert alerts(text(recovered)) == []
    assert deal.name in text(recovered)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_opening_an_edit_form_shows_the_problem_and_recovers(
    sales_client, sandbox, settings, fault: Fault, provider: str
):
    deal = open_deal(provider)
    edit_url = reverse("deals:field_edit", args=[deal.connection_slug, deal.id, "name"])
    assert sales_client.get(edit_url, **HTMX).status_code == 200
    sandbox.clear_log()
    fault.inject(sandbox, settings, provider)

    response = sales_client.get(edit_url, **HTMX)

    assert response.status_code == fault.page_status
    if fault.page_status == 404:
        # The deal is gone: htmx reloads the page, which then says so (the test above).
        assert response["HX-Refresh"] == "true"
    else:
        (alert,) = alerts(text(response))
        assert all(words in alert for words in fault.words)
    assert len(sandbox.requests(provider)) <= MAX_CALLS

    Fault.clear(sandbox, settings, provider)
    recovered = sales_client.get(edit_url, **HTMX)

    assert recovered.status_code == 200
    assert 'name="name"' in text(recovered)
