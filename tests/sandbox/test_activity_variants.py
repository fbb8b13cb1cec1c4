"""The sandbox's other answers to the two ASSUMED activity behaviours (nodestash.md §20: N-A9,
and the sort DealDesk's sync polls with), over real HTTP; a reset brings the assumed ones back."""

from __future__ import annotations

import pytest
import requests

from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN


@pytest.fixture
def api(nodestash_info, sandbox):
    sandbox.set_rate_limiting("nodestash", False)

    def call(method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {DEFAULT_NODESTASH_TOKEN}"}
        return requests.request(
            method, nodestash_info.base_url + path, headers=headers, timeout=5, **kwargs
        )

    return call


def an_open_task(sandbox) -> dict:
    simulator = sandbox.simulators["nodestash"]
    return next(
        a for a in simulator.activities.values() if a["type"] == "task" and not a["is_done"]
    )


def test_activity_patch_405_refuses_every_update_and_changes_nothing(api, sandbox):
    task = an_open_task(sandbox)
    sandbox.set_variants("nodestash", ["activity_patch_405"])

    response = api("PATCH", f"/activities/{task['id']}", json={"is_done": True})

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert sandbox.simulators["nodestash"].activities[task["id"]]["is_done"] is False
    assert api("POST", "/activities", json={"type": "note", "subject": "x"}).status_code == 201


def test_activity_sort_created_only_refuses_another_sort_on_the_sort_field(api, sandbox):
    sandbox.set_variants("nodestash", ["activity_sort_created_only"])

    refused = api("GET", "/activities", params={"sort": "-updated_at", "limit": 5})
    allowed = api("GET", "/activities", params={"sort": "-created_at", "limit": 5})

    assert refused.status_code == 400
    assert refused.json()["error"]["details"][0]["field"] == "sort"
    assert allowed.status_code == 200 and len(allowed.json()["data"]) == 5
    assert api("GET", "/deals", params={"sort": "-updated_at", "limit": 5}).status_code == 200


def test_a_reset_brings_back_the_assumed_behaviours(api, sandbox):
    sandbox.set_variants("nodestash", ["activity_patch_405", "activity_sort_created_only"])
    sandbox.reset("demo")
    sandbox.set_rate_limiting("nodestash", False)
    task = an_open_task(sandbox)

    assert api("GET", "/activities", params={"sort": "-updated_at", "limit": 5}).ok
    assert api("PATCH", f"/activities/{task['id']}", json={"is_done": True}).ok
