"""The deal list under every upstream fault: the failing source is named in an alert, the other
source's deals still show, the number of upstream calls stays bounded, and once the fault clears
the same list loads in full (no restart, nothing cached from the failure)."""

from __future__ import annotations

import re

import pytest

from tests.reliability.conftest import alerts, text
from tests.reliability.faults import FAULTS, PROVIDERS, Fault

pytestmark = pytest.mark.django_db

LIST = "/deals/"
LABELS = {"stora": "Stora", "nodestash": "nodestash"}
# What the list says about a failing source, by fault.
LIST_WORDS = {
    "timeout": "unavailable right now",
    "refused": "unavailable right now",
    "http500": "unavailable right now",
    "malformed": "unavailable right now",
    "http401": "rejected the API key",
    "http403": "lacks a permission",
    "http404": "could not find",
    "http409": "answered with an error",
    "validation": "answered with an error",
    "http429": "try again in",
}
# One list page asks a source for its reference data (a few lookups) and one page of deals; a
# failure stops at the first failing call, and only GETs on 502/503/504 are retried (at most 2).
MAX_CALLS_TO_FAILING_SOURCE = 3


def sources_shown(html: str) -> set[str]:
    return set(re.findall(r'data-label="Source">([^<]+)<', html))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_list_names_the_failing_source_and_recovers(
    sales_client, sandbox, settings, fault: Fault, provider: str
):
    other = next(p for p in PROVIDERS if p != provider)
    fault.inject(sandbox, settings, provider)

    response = sales_client.get(LIST)
    html = text(response)

    assert response.status_code == 200
    (alert,) = alerts(html)
    assert f"Deals from {LABELS[provider]} are missing." in alert
    assert LIST_WORDS[fault.name] in alert
    assert sources_shown(html) == {LABELS[other]}
    assert len(sandbox.requests(provider)) <= MAX_CALLS_TO_FAILING_SOURCE

    Fault.clear(sandbox, settings, provider)
    recovered = text(sales_client.get(LIST))

    assert alerts(recovered) == []
    assert sources_shown(recovered) == {"Stora", "nodestash"}


def test_both_sources_failing_is_still_a_page_with_two_alerts(sales_client, sandbox):
    sandbox.set_outage("nodestash", True)
    sandbox.fail_next("stora", 50, 500)

    response = sales_client.get(LIST)
    html = text(response)

    assert response.status_code == 200
    assert len(alerts(html)) == 2
    assert sources_shown(html) == set()


def test_the_htmx_list_partial_carries_the_alert_too(sales_client, sandbox):
    sandbox.set_outage("stora", True)

    response = sales_client.get(LIST, {"status": "open"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert any("Deals from Stora are missing." in alert for alert in alerts(text(response)))
