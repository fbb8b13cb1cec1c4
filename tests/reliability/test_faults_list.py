"""The deal list under every upstream fault. The list reads the synced store, so a fault never
reaches a page view: the list shows every stored deal with no upstream call. Where a fault shows
is the sync: a sync run during the fault names the failing source in an alert, in plain words,
while the stored deals of both sources still show; the sync's calls to the failing source stay
bounded, and once the fault clears the next sync clears the alert (no restart, nothing cached
from the failure)."""

from __future__ import annotations

import re

import pytest

from dealdesk.sync.engine import sync_run
from dealdesk.sync.models import SyncState
from tests.conftest import secrets_in
from tests.reliability.conftest import alerts, text
from tests.reliability.faults import FAULTS, PROVIDERS, Fault, wait_until_answered

pytestmark = pytest.mark.django_db

LIST = "/deals/"
LABELS = {"stora": "Stora", "nodestash": "nodestash"}
# What the list's alert says about a source whose sync failed, by fault (case-insensitive).
SYNC_WORDS = {
    "timeout": ("did not answer in time",),
    "refused": ("cannot be reached",),
    "http500": ("unavailable right now",),
    "malformed": ("could not read",),
    "http401": ("rejected the API key", "admin must update it"),
    "http403": ("lacks", "admin must update it"),
    "http404": ("not found",),
    "http409": ("refused DealDesk", "read (HTTP 409)"),
    "validation": ("refused DealDesk", "read (HTTP 4"),
    "http429": ("try again in",),
}
# A sync reads the list; nobody changed anything. Words about a refused or conflicting change
# would tell the reader something that did not happen.
WRITE_WORDS = ("since you loaded it", "refused the change", "changed by another request")
# A sync run stops at the first failing call; only GETs on 502/503/504 are retried (at most 2).
MAX_CALLS_TO_FAILING_SOURCE = 3


def sources_shown(html: str) -> set[str]:
    return set(re.findall(r'data-label="Source">([^<]+)<', html))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_the_list_is_served_from_the_store_whatever_fails_upstream(
    sales_client, sandbox, settings, fault: Fault, provider: str
):
    fault.inject(sandbox, settings, provider)

    response = sales_client.get(LIST)
    html = text(response)

    assert response.status_code == 200
    assert alerts(html) == []
    assert sources_shown(html) == {"Stora", "nodestash"}
    assert sandbox.requests("stora") == [] and sandbox.requests("nodestash") == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_a_sync_failing_names_the_source_on_the_list_and_recovers(
    sales_client, sandbox, settings, connections, fault: Fault, provider: str
):
    fault.inject(sandbox, settings, provider)
    report = sync_run(connections[provider])
    assert report.error
    wait_until_answered(sandbox, provider)
    assert 0 < len(sandbox.requests(provider)) <= MAX_CALLS_TO_FAILING_SOURCE
    sandbox.clear_log()

    response = sales_client.get(LIST)
    html = text(response)

    assert response.status_code == 200
    (alert,) = alerts(html)
    assert alert.startswith(f"Showing {LABELS[provider]} deals as of ")
    for words in SYNC_WORDS[fault.name]:
        assert words.casefold() in alert.casefold(), alert
    assert not any(words in alert for words in WRITE_WORDS), alert
    assert not secrets_in(html)
    assert sources_shown(html) == {"Stora", "nodestash"}  # the last known deals still show
    assert sandbox.requests("stora") == [] and sandbox.requests("nodestash") == []

    Fault.clear(sandbox, settings, provider)
    if fault.name == "http429":
        # The sync waits for the vendor's reset instead of asking again at once.
        assert sync_run(connections[provider]).paused_until is not None
        assert sandbox.requests(provider) == []
        SyncState.objects.filter(connection=connections[provider]).update(paused_until=None)
    assert not sync_run(connections[provider]).error
    recovered = text(sales_client.get(LIST))

    assert alerts(recovered) == []
    assert sources_shown(recovered) == {"Stora", "nodestash"}


def test_both_sources_failing_is_still_a_page_with_two_alerts_and_the_stored_deals(
    sales_client, sandbox, connections
):
    sandbox.set_outage("nodestash", True)
    sandbox.fail_next("stora", 50, 500)
    for connection in connections.values():
        assert sync_run(connection).error

    response = sales_client.get(LIST)
    html = text(response)

    assert response.status_code == 200
    found = alerts(html)
    assert len(found) == 2
    assert any(a.startswith("Showing Stora deals as of ") for a in found)
    assert any(a.startswith("Showing nodestash deals as of ") for a in found)
    assert sources_shown(html) == {"Stora", "nodestash"}


def test_the_htmx_list_partial_carries_the_alert_too(sales_client, sandbox, connections):
    sandbox.set_outage("stora", True)
    sync_run(connections["stora"])

    response = sales_client.get(LIST, {"status": "open"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert any(
        alert.startswith("Showing Stora deals as of ") and "cannot be reached" in alert
        for alert in alerts(text(response))
    )
