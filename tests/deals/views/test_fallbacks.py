"""The pages keep working when an ASSUMED vendor behaviour turns out wrong (sandbox variants),
over Django's test client and the sandbox over real HTTP; and the contract slips the adapters
guard against: ids that cannot be a vendor's, a spent nodestash daily quota."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.sync.models import SyncState
from tests.deals.demo_deals import a_deal, url, writes

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return response.content.decode()


def assigned_stora_deal(sandbox) -> dict:
    simulator = sandbox.simulators["stora"]
    return next(d for d in simulator.deals.values() if d["assignee"] and d["status"] == "open")


def test_without_a_staff_endpoint_stora_lists_and_opens_deals(sales_client, sandbox, resync):
    sandbox.set_variants("stora", ["staff_404"])
    resync(full=True)  # a full resync reads the reference data again
    raw = assigned_stora_deal(sandbox)
    staff_name = sandbox.simulators["stora"].staff[raw["assignee"]["id"]]["name"]

    listed = sales_client.get(reverse("deals:list"), {"source": "stora"})
    page = sales_client.get(reverse("deals:detail", args=["stora", raw["id"]]))
    html = text(page)

    assert listed.status_code == 200 and "are missing." not in text(listed)
    assert raw["name"] in text(listed)
    assert page.status_code == 200
    assert staff_name in html
    assert ">Edit Assignee</button>" not in html
    assert "Assignee cannot be changed in DealDesk" in html
    edit_name = reverse("deals:field_edit", args=["stora", raw["id"], "name"])
    assert sales_client.get(edit_name, **HTMX).status_code == 200  # other edits still work


def test_a_refused_expand_still_refreshes_every_stora_deal(sales_client, sandbox):
    sandbox.set_variants("stora", ["expand_422"])
    raw = assigned_stora_deal(sandbox)
    contact = sandbox.simulators["stora"].contacts[raw["contact"]["id"]]["full_name"]
    refresh = reverse("deals:refresh", args=["stora", raw["id"]])

    first = sales_client.post(refresh, follow=True)
    second = sales_client.post(refresh, follow=True)

    assert first.status_code == second.status_code == 200
    assert "Refreshed from the source just now." in text(second)
    assert contact in text(second)  # the name comes from the stored contact list
    shows = [r for r in sandbox.requests("stora") if r.path == f"/2025-09/deals/{raw['id']}"]
    assert [("expand" in r.query, r.status) for r in shows] == [
        (True, 422),
        (False, 200),
        (False, 200),
    ]


@pytest.mark.parametrize("variant", ["filters_422", "sort_422"])
def test_a_refused_filter_or_sort_still_lists_stora_deals_filtered_here(
    sales_client, sandbox, variant, resync
):
    sandbox.set_variants("stora", [variant])
    resync(full=True)  # the sync's own "most recently updated first" list under the variant
    won = {d["name"] for d in sandbox.simulators["stora"].deals.values() if d["status"] == "won"}

    response = sales_client.get(
        reverse("deals:list"), {"source": "stora", "status": "won", "sort": "updated"}
    )

    html = text(response)
    assert response.status_code == 200
    assert "are missing." not in html
    names = re.findall(
        r'<td class="cell-name" data-label="Name"><a href="[^"]+"[^>]*>([^<]+)</a>', html
    )
    statuses = re.findall(r'<td data-label="Status"><span class="badge [^"]+">([^<]+)</span>', html)
    assert len(names) == min(25, len(won)) and set(names) <= won
    assert set(statuses) == {"Won"}


def test_an_enveloped_include_keeps_status_and_state_actions(sales_client, sandbox):
    sandbox.set_variants("nodestash", ["include_enveloped"])
    deal = deal_list(filters=DealFilters(source="nodestash", status="won"), page_size=1).deals[0]
    sales_client.post(reverse("deals:refresh", args=["nodestash", deal.id]))  # a live read

    html = text(sales_client.get(reverse("deals:detail", args=["nodestash", deal.id])))
    assert [r.path for r in sandbox.requests("nodestash")] == [f"/v1/deals/{deal.id}"]

    assert 'class="badge badge-lg badge-won"' in html
    assert ">Reopen</button>" in html


def test_a_cursor_bound_to_its_page_size_still_syncs_every_deal(sales_client, sandbox, resync):
    sandbox.reset("230")  # three pages of nodestash deals
    sandbox.set_rate_limiting("all", False)
    sandbox.set_variants("nodestash", ["cursor_bound_to_limit"])
    expected = set(sandbox.simulators["nodestash"].deals)

    resync(full=True)

    keys = []
    for page in range(1, 20):
        result = deal_list(filters=DealFilters(source="nodestash"), page=page, page_size=100)
        assert result.errors == []
        keys += [d.id for d in result.deals]
        if result.next_page is None:
            break
    assert len(keys) == len(set(keys)) and set(keys) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/deals/stora/../",
        "/deals/stora/%2E%2E/",
        "/deals/stora/dl_abc/",
        "/deals/nodestash/deal_abc/",
        "/deals/nodestash/../fields/name/edit/",
    ],
)
def test_a_deal_id_that_cannot_be_the_vendors_is_a_404_and_nothing_is_sent(
    sales_client, sandbox, path
):
    sales_client.get(reverse("deals:list"))  # reference data cached, as on a real visit
    sandbox.clear_log()

    response = sales_client.get(path, **(HTMX if "fields" in path else {}))

    assert response.status_code == 404
    assert sandbox.requests() == []


def test_a_write_to_an_impossible_id_is_a_404_and_nothing_is_sent(sales_client, sandbox):
    detail = a_deal("stora")
    sandbox.clear_log()

    response = sales_client.post(
        "/deals/stora/../fields/name/save/",
        {"name": "x", "original": "", "seen_updated_at": "", "idempotency_key": "k1"},
    )

    assert response.status_code == 404
    assert sandbox.requests() == [] and writes(sandbox, "stora") == []
    assert url("detail", detail)  # the real deal is untouched


def test_a_spent_nodestash_daily_quota_says_so_and_stops_calling(
    sales_client, sandbox, monkeypatch, connections
):
    from dealdesk.sync.engine import sync_run

    simulator = sandbox.simulators["nodestash"]
    monkeypatch.setattr(simulator, "daily_limit", simulator._daily_used + 1)
    sync_run(connections["nodestash"])  # its answer says X-RateLimit-Remaining: 0
    SyncState.objects.filter(connection=connections["nodestash"]).update(paused_until=None)
    sandbox.clear_log()

    sync_run(connections["nodestash"])  # refused before anything is sent
    response = sales_client.get(reverse("deals:list"))

    html = text(response)
    assert response.status_code == 200
    assert "daily request quota is used up" in html and "UTC" in html
    assert "Showing nodestash deals as of" in html
    assert sandbox.requests("nodestash") == []
