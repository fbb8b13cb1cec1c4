"""Every write under every upstream fault, aimed at the write request itself (the GET before it
succeeds): the user reads the problem in role="alert", the change is never shown as saved, the
form comes back with what the user chose or typed, the audit trail records the failure, exactly
one write request is sent (never retried), and submitting the same form again once the fault
clears saves the change exactly once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse

from dealdesk.deals.models import AuditEntry
from dealdesk.deals.services import DealFilters, deal_get, deal_list, deal_refresh
from tests.reliability.conftest import HTMX, alerts, form, text
from tests.reliability.faults import FAULTS, PROVIDERS, Fault, wait_until_answered

pytestmark = pytest.mark.django_db

TYPED_NAME = "Typed while the source failed"
# One GET of the deal before the write, the write, one GET to render the form again and, after
# a 409, one GET of the deal as it is now.
MAX_CALLS = 4


def first_other(options: list[str], current: str | None) -> str:
    return next(value for value in options if value and value != current)


@dataclass(frozen=True)
class Write:
    name: str
    deal_status: str  # the status of a deal this write applies to
    page_params: dict
    url_name: str
    stora_method: str  # nodestash writes are all PATCH
    fill: Callable[[dict, dict], dict]  # (fields, select options) -> what the user submits
    done: Callable[[object, dict], bool]  # (deal read back, submitted data) -> landed?

    def url(self, deal) -> str:
        args = [deal.connection_slug, deal.id]
        return reverse(
            f"deals:{self.url_name}", args=[*args, "name"] if self.name == "rename" else args
        )

    def method(self, provider: str) -> str:
        return self.stora_method if provider == "stora" else "PATCH"


WRITES = [
    Write(
        "rename",
        "open",
        {"edit": "name"},
        "field_save",
        "PATCH",
        lambda fields, options: {**fields, "name": TYPED_NAME},
        lambda deal, data: deal.name == TYPED_NAME,
    ),
    Write(
        "change_stage",
        "open",
        {},
        "change_stage",
        "PATCH",
        lambda fields, options: {
            **fields,
            "stage": first_other(options["stage"], fields["original_stage"]),
        },
        lambda deal, data: deal.stage.id == data["stage"],
    ),
    Write(
        "mark_won",
        "open",
        {},
        "mark_won",
        "POST",
        lambda fields, options: fields,
        lambda deal, data: deal.status == "won",
    ),
    Write(
        "mark_lost",
        "open",
        {"action": "lose"},
        "mark_lost",
        "POST",
        lambda fields, options: {
            **fields,
            "reason": fields["reason"] or first_other(options.get("reason", []), ""),
        },
        lambda deal, data: deal.status == "lost",
    ),
    Write(
        "reopen",
        "lost",
        {"action": "reopen"},
        "reopen",
        "POST",
        lambda fields, options: {**fields, "stage": first_other(options["stage"], "")},
        lambda deal, data: deal.status == "open",
    ),
]


def a_deal(provider: str, status: str):
    return deal_list(filters=DealFilters(source=provider, status=status), page_size=1).deals[0]


def read_back(deal):
    """The deal as the source has it now (a live read): what landed upstream, whatever the
    store says."""
    return deal_refresh(connection_slug=deal.connection_slug, deal_id=deal.id).deal


def stored(deal):
    """The deal as the store has it: what every page shows."""
    return deal_get(connection_slug=deal.connection_slug, deal_id=deal.id).deal


def writes_sent(sandbox, provider: str) -> list:
    return [r for r in sandbox.requests(provider) if r.method != "GET"]


def saved(html: str, write: Write) -> bool:
    """The answer that shows a write as saved swaps in more than the region it came from."""
    marker = 'id="deal-title"' if write.name == "rename" else 'id="deal-fields"'
    return marker in html


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_a_failed_write_is_reported_kept_audited_and_succeeds_once_the_fault_clears(
    sales_client, sandbox, settings, fault: Fault, write: Write, provider: str
):
    deal = a_deal(provider, write.deal_status)
    url = write.url(deal)
    page = text(
        sales_client.get(reverse("deals:detail", args=[provider, deal.id]), write.page_params)
    )
    data = write.fill(*form(page, url))
    sandbox.clear_log()
    fault.inject(sandbox, settings, provider, method=write.method(provider))

    response = sales_client.post(url, data, **HTMX)
    html = text(response)

    # What the user sees: the problem, in plain words, and never "saved".
    assert response.status_code == fault.page_status
    assert not saved(html, write)
    if fault.page_status == 404:  # the deal is gone: the page reloads and says so
        assert response["HX-Refresh"] == "true"
    else:
        found = alerts(html)
        assert found, html
        shown = " ".join(found)
        if not (fault.name == "validation" and write.name == "rename"):  # next to the input
            assert all(words in shown for words in fault.words), shown
        if fault.name in ("timeout", "malformed"):
            assert "cannot tell whether your change was saved" in shown
        # The form comes back holding what the user typed or chose.
        kept, _options = form(html, url)
        for name in ("name", "stage", "reason"):
            if name in data and name in kept:
                assert kept[name] == data[name], name
        if write.name == "rename":
            assert kept["name"] == TYPED_NAME
    # The audit trail records the failed attempt.
    entry = AuditEntry.objects.filter(deal_id=deal.id).latest("id")
    assert entry.outcome in (AuditEntry.Outcome.FAILED, AuditEntry.Outcome.CONFLICT)
    assert entry.error_message
    assert entry.action == write.url_name if write.name != "rename" else entry.action == "update"
    # Exactly one write request, never retried, and a bounded number of reads.
    assert len(writes_sent(sandbox, provider)) == 1
    assert len(sandbox.requests(provider)) <= MAX_CALLS
    # No page shows the change as made: the store holds what the source last confirmed.
    assert not write.done(stored(deal), data)
    # Only a write that timed out was carried out: the sandbox answered it after we gave up.
    wait_until_answered(sandbox, provider)
    Fault.clear(sandbox, settings, provider)
    landed_late = write.done(read_back(deal), data)
    assert landed_late == (fault.name == "timeout")

    sandbox.clear_log()
    if fault.page_status == 404:  # after the reload, from the page as it now is
        page = text(
            sales_client.get(reverse("deals:detail", args=[provider, deal.id]), write.page_params)
        )
        again = write.fill(*form(page, url))
    else:
        fields, _options = form(html, url)
        again = {**fields, **{k: v for k, v in data.items() if k in ("name", "stage", "reason")}}
    retried = sales_client.post(url, again, **HTMX)

    assert retried.status_code == 200, alerts(text(retried))
    assert saved(text(retried), write)
    assert alerts(text(retried)) == []
    assert write.done(stored(deal), again)  # everyone sees it at once, without a sync
    assert write.done(read_back(deal), again)
    # Exactly once in all: the retry sends nothing when the timed-out write had landed.
    assert len(writes_sent(sandbox, provider)) == (0 if landed_late else 1)


# --- A source that is down altogether: the deal cannot even be read before the write ---------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_saving_while_the_source_is_down_keeps_the_typed_value_and_sends_nothing(
    sales_client, sandbox, settings, provider
):
    deal = a_deal(provider, "open")
    rename = WRITES[0]
    page = text(
        sales_client.get(reverse("deals:detail", args=[provider, deal.id]), {"edit": "name"})
    )
    data = rename.fill(*form(page, rename.url(deal)))
    sandbox.set_outage(provider, True)
    sandbox.clear_log()

    response = sales_client.post(rename.url(deal), data, **HTMX)
    html = text(response)

    assert response.status_code == 503
    assert any("cannot be reached" in alert for alert in alerts(html))
    kept, _options = form(html, rename.url(deal))
    assert kept["name"] == TYPED_NAME
    assert writes_sent(sandbox, provider) == []
    assert AuditEntry.objects.get(deal_id=deal.id).outcome == AuditEntry.Outcome.FAILED
    assert 'id="history"' in html and "Failed" in html.split('id="history"')[1]

    sandbox.set_outage(provider, False)
    retried = sales_client.post(rename.url(deal), kept, **HTMX)

    assert retried.status_code == 200
    assert read_back(deal).name == TYPED_NAME


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_state_change_while_the_source_is_down_says_so_and_sends_nothing(
    sales_client, sandbox, provider
):
    deal = a_deal(provider, "open")
    won = WRITES[2]
    page = text(sales_client.get(reverse("deals:detail", args=[provider, deal.id])))
    data = won.fill(*form(page, won.url(deal)))
    sandbox.set_outage(provider, True)
    sandbox.clear_log()

    response = sales_client.post(won.url(deal), data, **HTMX)

    html = text(response)
    assert response.status_code == 503
    assert any("cannot be reached" in alert for alert in alerts(html))
    # The state region is drawn again from the store: the deal is still open, never "won".
    assert html.lstrip().startswith('<section id="deal-state"')
    assert "badge-won" not in html
    assert writes_sent(sandbox, provider) == []
    assert len(sandbox.requests(provider)) <= 3  # the read before the write, retried at most twice
    assert stored(deal).status == "open"

    sandbox.set_outage(provider, False)
    assert sales_client.post(won.url(deal), data, **HTMX).status_code == 200
    assert read_back(deal).status == "won"


def test_the_sandbox_aims_a_fault_at_one_method_only(sandbox, stora_info):
    """The write tests rely on it: the GET before a write succeeds, the write fails."""
    import requests

    sandbox.fail_next("stora", 5, 503, method="PATCH")
    headers = {"Authorization": f"Bearer {stora_info.api_key}"}
    deals_url = f"{stora_info.base_url}/2025-09/deals"

    assert requests.get(deals_url, headers=headers, timeout=5).status_code == 200
    assert sandbox.faults["stora"].fail_next  # the GET left the queued failures alone
    sandbox.set_outage("stora", True, method="POST")
    assert requests.get(deals_url, headers=headers, timeout=5).status_code == 200
