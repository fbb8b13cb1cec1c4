"""Polling "most recently updated first" over real HTTP, as a sync engine does it (stora.md §15,
nodestash.md §18): every change moves updated_at strictly forward and to the top of the list,
equal timestamps keep one order, deletions vanish from a full walk, and the volumes hold."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN
from dealdesk.sandbox.seed_nodestash import MANY_REFERENCES
from dealdesk.sandbox.seed_stora import MANY_CONTACTS

STORA_AUTH = {"Authorization": f"Bearer {DEFAULT_STORA_TOKEN}"}
NODESTASH_AUTH = {"Authorization": f"Bearer {DEFAULT_NODESTASH_TOKEN}"}


@pytest.fixture
def stora(sandbox_server, sandbox):
    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{sandbox_server.stora_url}/2025-09{path}"
        return requests.request(method, url, headers=STORA_AUTH, timeout=10, **kwargs)

    return call


@pytest.fixture
def nodestash(sandbox_server, sandbox):
    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{sandbox_server.nodestash_url}{path}"
        return requests.request(method, url, headers=NODESTASH_AUTH, timeout=10, **kwargs)

    return call


def stora_poll(stora, *, limit: int = 100) -> list[dict[str, Any]]:
    """Every deal, most recently updated first, page by page as the sync engine walks them."""
    deals, page = [], 1
    while page is not None:
        params = {"sort_by": "updated_at", "sort_direction": "DESC", "limit": limit, "page": page}
        body = stora("GET", "/deals", params=params).json()
        deals += body["deals"]
        page = body["meta"]["pagination"]["next"]
    return deals


def nodestash_poll(nodestash, *, limit: int = 100) -> list[dict[str, Any]]:
    deals, cursor = [], None
    while True:
        params = {"sort": "-updated_at", "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = nodestash("GET", "/deals", params=params).json()
        deals += [item["attributes"] for item in body["data"]]
        cursor = body["meta"]["pagination"]["next_cursor"]
        if not cursor:
            return deals


def stora_open_deal(stora) -> dict[str, Any]:
    deals = stora("GET", "/deals", params={"status": "open", "limit": 100}).json()["deals"]
    return next(d for d in deals if "id" in d["stage"])


def stora_top(stora) -> list[dict[str, Any]]:
    """The first page of a poll."""
    params = {"sort_by": "updated_at", "sort_direction": "DESC", "limit": 100}
    return stora("GET", "/deals", params=params).json()["deals"]


def newest_updated_at(deals: list[dict[str, Any]]) -> str:
    return max(d["updated_at"] for d in deals)


# --- Stora --------------------------------------------------------------------------------------


def test_every_kind_of_stora_change_puts_the_deal_on_top_with_a_later_updated_at(stora, sandbox):
    deal = stora_open_deal(stora)
    contact = stora("GET", "/contacts", params={"limit": 1}).json()["contacts"][0]
    changes = [
        lambda: stora("PATCH", f"/deals/{deal['id']}", json={"name": "Renamed"}),
        lambda: stora("POST", f"/deals/{deal['id']}/lose", json={"lost_reason": "price_concerns"}),
        lambda: stora("POST", f"/deals/{deal['id']}/reopen", json={}),
        lambda: stora("POST", f"/deals/{deal['id']}/win"),
        lambda: sandbox.mutate_deal("stora", deal["id"], {"name": "Changed elsewhere"}),
        lambda: stora("POST", "/deals", json={"name": "New", "contact": {"id": contact["id"]}}),
    ]
    newest = newest_updated_at(stora_poll(stora))
    own = deal["updated_at"]
    for change in changes:
        answer = change()
        changed_id = (answer if isinstance(answer, dict) else answer.json()["deal"])["id"]

        top = stora_top(stora)
        first = next(d for d in top if d["id"] == changed_id)

        assert first["updated_at"] == top[0]["updated_at"]  # first, or tied with the first
        assert first["updated_at"] >= newest  # never behind a change polled before
        if changed_id == deal["id"]:
            assert first["updated_at"] > own  # strictly later than the deal's own last stamp
            own = first["updated_at"]
        newest = first["updated_at"]


def test_stora_changes_in_one_second_to_different_deals_never_go_backwards(stora, sandbox):
    deals = stora("GET", "/deals", params={"status": "open", "limit": 5}).json()["deals"]
    stamps = []
    for index, deal in enumerate(deals * 2):
        answer = stora("PATCH", f"/deals/{deal['id']}", json={"name": f"Burst {index}"})
        stamps.append(answer.json()["deal"]["updated_at"])

    assert stamps == sorted(stamps)
    assert len(set(stamps)) >= 2  # the same deal twice within a second still moves on


def test_stora_equal_timestamps_keep_one_order_on_every_walk(stora, sandbox):
    deals = stora("GET", "/deals", params={"limit": 6}).json()["deals"]
    stamp = "2030-01-01T00:00:00Z"  # the newest, so they come first
    for deal in deals:
        sandbox.mutate_deal("stora", deal["id"], {"updated_at": stamp})

    walks = [[d["id"] for d in stora_poll(stora, limit=4)[:6]] for _ in range(3)]

    assert walks[0] == walks[1] == walks[2]
    assert sorted(walks[0]) == sorted(d["id"] for d in deals)
    assert walks[0] == sorted(walks[0], reverse=True)  # ties break on id


def test_a_stora_deal_deleted_upstream_is_gone_from_a_full_walk(stora, sandbox, sandbox_server):
    deal = stora_open_deal(stora)

    response = requests.delete(
        f"{sandbox_server.url}/__sandbox/deals/stora/{deal['id']}", timeout=5
    )

    assert response.status_code == 200
    assert deal["id"] not in {d["id"] for d in stora_poll(stora)}
    assert stora("GET", f"/deals/{deal['id']}").status_code == 404
    # Stora documents no delete: the vendor API still refuses one.
    assert stora("DELETE", f"/deals/{stora_open_deal(stora)['id']}").status_code == 404


# --- nodestash ----------------------------------------------------------------------------------


def test_every_kind_of_nodestash_change_puts_the_deal_on_top_with_a_later_updated_at(
    nodestash, sandbox
):
    deal = nodestash("GET", "/deals", params={"limit": 1}).json()["data"][0]["attributes"]
    changes = [
        lambda: nodestash("PATCH", f"/deals/{deal['id']}", json={"title": "Renamed"}),
        lambda: sandbox.mutate_deal("nodestash", deal["id"], {"title": "Changed elsewhere"}),
        lambda: nodestash("POST", "/deals", json={"title": "Brand new"}),
    ]
    newest = newest_updated_at(nodestash_poll(nodestash))
    own = deal["updated_at"]
    for change in changes:
        answer = change()
        changed = answer if isinstance(answer, dict) else answer.json()["data"]["attributes"]

        params = {"sort": "-updated_at", "limit": 100}
        top = [d["attributes"] for d in nodestash("GET", "/deals", params=params).json()["data"]]
        first = next(d for d in top if d["id"] == changed["id"])

        assert first["updated_at"] == top[0]["updated_at"]  # first, or tied with the first
        assert first["updated_at"] >= newest
        if changed["id"] == deal["id"]:
            assert first["updated_at"] > own
            own = first["updated_at"]
        newest = first["updated_at"]


def test_nodestash_equal_timestamps_keep_one_order_on_every_walk(nodestash, sandbox):
    deals = [
        d["attributes"] for d in nodestash("GET", "/deals", params={"limit": 6}).json()["data"]
    ]
    for deal in deals:
        sandbox.mutate_deal("nodestash", deal["id"], {"updated_at": "2030-01-01T00:00:00Z"})

    walks = [[d["id"] for d in nodestash_poll(nodestash, limit=4)[:6]] for _ in range(3)]

    assert walks[0] == walks[1] == walks[2]
    assert sorted(walks[0]) == sorted(d["id"] for d in deals) == walks[0]  # ties: id ascending


def test_a_nodestash_deal_deleted_through_the_api_is_gone_from_a_full_walk(nodestash):
    deal = nodestash("GET", "/deals", params={"limit": 1}).json()["data"][0]["attributes"]

    response = nodestash("DELETE", f"/deals/{deal['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["X-Request-Id"]
    assert deal["id"] not in {d["id"] for d in nodestash_poll(nodestash)}
    assert nodestash("GET", f"/deals/{deal['id']}").status_code == 404
    assert nodestash("DELETE", f"/deals/{deal['id']}").status_code == 404


def test_a_nodestash_deal_deleted_through_python_is_gone(nodestash, sandbox):
    deal = nodestash("GET", "/deals", params={"limit": 1}).json()["data"][0]["attributes"]

    sandbox.delete_deal("nodestash", deal["id"])

    assert deal["id"] not in {d["id"] for d in nodestash_poll(nodestash)}
    with pytest.raises(KeyError):
        sandbox.delete_deal("nodestash", deal["id"])


def test_deleting_an_unknown_deal_through_the_control_api_is_a_404(sandbox_server, sandbox):
    base = f"{sandbox_server.url}/__sandbox/deals"
    assert requests.delete(f"{base}/stora/deal_nope", timeout=5).status_code == 404
    assert requests.delete(f"{base}/unicorn/deal_nope", timeout=5).status_code == 404


# --- Volumes (issue 11) -------------------------------------------------------------------------


def test_large_seed_walks_completely(stora, nodestash, sandbox):
    sandbox.reset("large")  # how fast it builds is measured by `make bench`, not timed here
    sandbox.set_rate_limiting("all", False)  # a reset turns them on; not under test here

    stora_deals = stora_poll(stora)
    nodestash_deals = nodestash_poll(nodestash)

    assert len({d["id"] for d in stora_deals}) == len(stora_deals) == 10_000
    assert len({d["id"] for d in nodestash_deals}) == len(nodestash_deals) == 10_000
    stamps = [d["updated_at"] for d in nodestash_deals]
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize("seed", ["large", "contacts"])
def test_seed_has_1500_contacts_and_companies_that_deals_reference(stora, nodestash, sandbox, seed):
    sandbox.reset(seed)
    sandbox.set_rate_limiting("all", False)

    stora_contacts = stora("GET", "/contacts", params={"limit": 100}).json()
    contact_ids = {c["id"] for c in sandbox.simulators["stora"].contacts.values()}
    nodestash_sim = sandbox.simulators["nodestash"]

    assert stora_contacts["meta"]["pagination"]["count"] == MANY_CONTACTS == 1_500
    assert len(nodestash_sim.contacts) == len(nodestash_sim.companies) == MANY_REFERENCES
    stora_deals = stora_poll(stora)
    referenced = {d["contact"]["id"] for d in stora_deals}
    assert referenced <= contact_ids and len(referenced) >= min(len(stora_deals), 1_500) // 2
    nodestash_companies = {d["company_id"] for d in nodestash_sim.deals.values()}
    assert nodestash_companies <= set(nodestash_sim.companies)
    assert len(nodestash_companies) > 100
    emails = [c["email"] for c in nodestash_sim.contacts.values()]
    assert len(set(emails)) == len(emails)


def test_contacts_seed_has_300_deals(stora, sandbox):
    sandbox.reset("contacts")
    sandbox.set_rate_limiting("all", False)

    assert stora("GET", "/deals", params={"limit": 1}).json()["meta"]["pagination"]["count"] == 300
    assert len(sandbox.simulators["nodestash"].deals) == 300
