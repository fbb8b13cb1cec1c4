"""The simulators keep a sorted deal order between requests; any change must reorder it."""

import requests

from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN


def stora_names(url: str) -> list[str]:
    response = requests.get(
        f"{url}/2025-09/deals",
        params={"sort_by": "updated_at", "sort_direction": "DESC", "limit": 100},
        headers={"Authorization": f"Bearer {DEFAULT_STORA_TOKEN}"},
        timeout=5,
    )
    return [deal["id"] for deal in response.json()["deals"]]


def nodestash_ids(url: str) -> list[str]:
    response = requests.get(
        f"{url}/deals",
        params={"sort": "-updated_at", "limit": 100},
        headers={"Authorization": f"Bearer {DEFAULT_NODESTASH_TOKEN}"},
        timeout=5,
    )
    return [deal["id"] for deal in response.json()["data"]]


def test_stora_list_reorders_after_a_deal_changes(sandbox, sandbox_server):
    before = stora_names(sandbox_server.stora_url)
    oldest = before[-1]
    sandbox.mutate_deal("stora", oldest, {"name": "Touched just now"})
    after = stora_names(sandbox_server.stora_url)
    assert after[0] == oldest
    assert sorted(after) == sorted(before)


def test_nodestash_list_reorders_after_a_deal_changes(sandbox, sandbox_server):
    before = nodestash_ids(sandbox_server.nodestash_url)
    oldest = before[-1]
    requests.patch(
        f"{sandbox_server.nodestash_url}/deals/{oldest}",
        json={"title": "Touched just now"},
        headers={"Authorization": f"Bearer {DEFAULT_NODESTASH_TOKEN}"},
        timeout=5,
    )
    after = nodestash_ids(sandbox_server.nodestash_url)
    assert after[0] == oldest
    assert sorted(after) == sorted(before)


def test_stora_list_reorders_after_a_reset(sandbox, sandbox_server):
    stora_names(sandbox_server.stora_url)
    sandbox.reset("3")
    assert len(stora_names(sandbox_server.stora_url)) == 3
