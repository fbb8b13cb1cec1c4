"""The deal page and its edit forms under every upstream fault. They read the synced store, so a
fault never reaches them: the page and the forms open with no upstream call. A fault shows where
DealDesk does ask upstream: a sync run during the fault puts the source's alert on the deal page
(the stored deal still shows), and the Refresh button says what went wrong in plain words in
role="alert", never a 500, with one upstream read retried only for 502/503/504 and at most
twice; once the fault clears the same Refresh works."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.sync.engine import sync_run
from dealdesk.sync.models import SyncState
from tests.conftest import secrets_in
from tests.reliability.conftest import HTMX, alerts, text
from tests.reliability.faults import FAULTS, PROVIDERS, Fault, wait_until_answered
from tests.reliability.test_faults_list import SYNC_WORDS, WRITE_WORDS

pytestmark = pytest.mark.django_db

MAX_CALLS = 3  # one GET of the deal and at most two retries (502/503/504 only)
NOT_FOUND_WORDS = "does not exist, or it was deleted in its source system"
LABELS = {"stora": "Stora", "nodestash": "nodestash"}
# What the Refresh says, by fault: the words of the error page a live read used to show.
REFRESH_WORDS = {fault.name: fault.words for fault in FAULTS}


def open_deal(provider: str):
    return deal_list(filters=DealFilters(source=provider, status="open"), page_size=1).deals[0]


def detail_url(deal) -> str:
    return reverse("deals:detail", args=[deal.connection_slug, deal.id])


def refresh_url(deal) -> str:
    return reverse("deals:refresh", args=[deal.connection_slug, deal.id])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_the_deal_page_and_its_edit_form_are_served_from_the_store_whatever_fails(
    sales_client, sandbox, settings, fault: Fault, provider: str
):
    deal = open_deal(provider)
    edit_url = reverse("deals:field_edit", args=[deal.connection_slug, deal.id, "name"])
    fault.inject(sandbox, settings, provider)

    page = sales_client.get(detail_url(deal))
    form = sales_client.get(edit_url, **HTMX)

    assert page.status_code == 200
    assert deal.name in text(page)
    assert alerts(text(page)) == []
    assert form.status_code == 200
    assert 'name="name"' in text(form)
    assert sandbox.requests("stora") == [] and sandbox.requests("nodestash") == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_a_sync_failing_shows_its_alert_on_the_deal_page_with_the_stored_deal(
    sales_client, sandbox, settings, connections, fault: Fault, provider: str
):
    deal = open_deal(provider)
    fault.inject(sandbox, settings, provider)
    assert sync_run(connections[provider]).error
    wait_until_answered(sandbox, provider)
    sandbox.clear_log()

    response = sales_client.get(detail_url(deal))
    html = text(response)

    assert response.status_code == 200
    assert deal.name in html
    (alert,) = alerts(html)
    assert alert.startswith(f"Showing {LABELS[provider]} deals as of ")
    for words in SYNC_WORDS[fault.name]:
        assert words.casefold() in alert.casefold(), alert
    assert not any(words in alert for words in WRITE_WORDS), alert
    assert not secrets_in(html)
    assert sandbox.requests(provider) == []

    Fault.clear(sandbox, settings, provider)
    SyncState.objects.filter(connection=connections[provider]).update(paused_until=None)
    assert not sync_run(connections[provider]).error
    recovered = sales_client.get(detail_url(deal))

    assert recovered.status_code == 200
    assert alerts(text(recovered)) == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_refresh_shows_the_problem_and_recovers(
    sales_client, sandbox, settings, fault: Fault, provider: str
):
    deal = open_deal(provider)
    fault.inject(sandbox, settings, provider)

    response = sales_client.post(refresh_url(deal), follow=True)
    html = text(response)

    wait_until_answered(sandbox, provider)
    assert 0 < len(sandbox.requests(provider)) <= MAX_CALLS
    assert not secrets_in(html)
    if fault.page_status == 404:
        # The source says the deal is gone: the page says so (and the store forgets it).
        assert response.status_code == 404
        assert NOT_FOUND_WORDS in " ".join(alerts(html))
    else:
        assert response.status_code == 200
        assert deal.name in html  # the stored deal still shows
        (alert,) = alerts(html)
        for words in REFRESH_WORDS[fault.name]:
            assert words in alert, alert
        assert LABELS[provider] in alert
        assert "Refreshed" not in html

    Fault.clear(sandbox, settings, provider)
    sandbox.clear_log()
    recovered = sales_client.post(refresh_url(deal), follow=True)

    assert recovered.status_code == 200
    assert alerts(text(recovered)) == []
    assert "Refreshed from the source just now." in text(recovered)
    assert deal.name in text(recovered)
    assert len(sandbox.requests(provider)) == 1  # one read of the deal
