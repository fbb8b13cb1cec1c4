"""nodestash plans and quotas (nodestash.md §11, §18) over real HTTP: switched from Python and the
control API, reported on every response, and enforced with the documented 429s."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN


@pytest.fixture
def nodestash(sandbox_server, sandbox):
    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {DEFAULT_NODESTASH_TOKEN}"}
        url = f"{sandbox_server.nodestash_url}{path}"
        return requests.request(method, url, headers=headers, timeout=5, **kwargs)

    return call


@pytest.fixture
def control(sandbox_server):
    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method, f"{sandbox_server.url}/__sandbox/{path}", timeout=5, **kwargs
        )

    return call


def fresh_second() -> None:
    """Wait for the start of a new one-second burst window."""
    time.sleep(1 - time.time() % 1 + 0.01)


def seconds_to_midnight_utc() -> int:
    return 86400 - int(time.time()) % 86400


def test_the_default_plan_has_free_burst_and_a_daily_quota_demos_never_spend(nodestash, sandbox):
    response = nodestash("GET", "/pipelines")

    assert response.headers["X-RateLimit-Burst-Limit"] == "5"
    assert response.headers["X-RateLimit-Limit"] == "100000"
    assert sandbox.quota("nodestash")["plan"] == "sandbox"


@pytest.mark.parametrize(
    ("plan", "daily", "burst"), [("free", 1_000, 5), ("starter", 25_000, 25), ("pro", 250_000, 50)]
)
def test_control_api_switches_the_plan_and_every_response_says_so(
    nodestash, control, sandbox, plan, daily, burst
):
    answer = control("POST", "plan", json={"provider": "nodestash", "plan": plan})

    assert answer.status_code == 200
    assert answer.json()["providers"]["nodestash"]["quota"]["plan"] == plan
    responses = [nodestash("GET", "/deals?limit=1"), nodestash("GET", "/deals/dl_nope")]
    for spent, response in enumerate(responses, start=1):
        assert response.headers["X-RateLimit-Limit"] == str(daily)
        assert response.headers["X-RateLimit-Burst-Limit"] == str(burst)
        assert response.headers["X-RateLimit-Remaining"] == str(daily - spent)
        assert int(response.headers["X-RateLimit-Reset"]) % 86400 == 0


def test_starter_allows_25_a_second_and_refuses_the_26th(nodestash, sandbox):
    sandbox.set_plan("nodestash", "starter")
    sandbox.set_rate_limiting("nodestash", True)
    fresh_second()

    statuses = [nodestash("GET", "/pipelines").status_code for _ in range(26)]

    if statuses.count(429) == 0:  # the 26 calls spread over two windows: try once more
        fresh_second()
        statuses = [nodestash("GET", "/pipelines").status_code for _ in range(26)]
    assert statuses[:25] == [200] * 25
    assert statuses[25] == 429


def test_free_burst_429_names_the_plan(nodestash, sandbox):
    sandbox.set_plan("nodestash", "free")
    sandbox.set_rate_limiting("nodestash", True)
    fresh_second()

    limited = [nodestash("GET", "/pipelines") for _ in range(6)][-1]

    assert limited.status_code == 429
    error = limited.json()["error"]
    assert (error["code"], error["retry_after"]) == ("RATE_LIMITED", 1)
    assert "Free plan" in error["message"]
    assert limited.headers["X-RateLimit-Burst-Remaining"] == "0"


def test_a_spent_daily_quota_refuses_until_midnight_utc(nodestash, control, sandbox):
    sandbox.set_rate_limiting("nodestash", True)
    answer = control("POST", "plan", json={"provider": "nodestash", "daily_remaining": 3})
    assert answer.json()["providers"]["nodestash"]["quota"]["daily_remaining"] == 3

    responses = [nodestash("GET", "/activities?limit=1") for _ in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    refused = responses[-1]
    wait = int(refused.headers["Retry-After"])
    assert abs(wait - seconds_to_midnight_utc()) <= 2
    error = refused.json()["error"]
    assert (error["code"], error["retry_after"]) == ("RATE_LIMITED", wait)
    assert error["upgrade_url"] and "Daily quota" in error["message"]
    assert int(refused.headers["X-RateLimit-Reset"]) == int(time.time()) + wait


def test_writes_and_activities_spend_the_same_quota(nodestash, sandbox):
    sandbox.set_plan("nodestash", "free")
    sandbox.set_rate_limiting("nodestash", True)
    sandbox.set_daily_remaining("nodestash", 2)

    created = nodestash("POST", "/activities", json={"type": "note", "subject": "Called"})
    deal = nodestash("POST", "/deals", json={"title": "One too many"})

    assert created.status_code == 201
    assert created.headers["X-RateLimit-Remaining"] == "1"
    assert deal.status_code == 201
    assert nodestash("GET", "/deals?limit=1").status_code == 429
    assert sandbox.quota("nodestash")["daily_remaining"] == 0


def test_with_rate_limiting_off_a_spent_quota_still_counts_but_never_refuses(nodestash, sandbox):
    sandbox.set_daily_remaining("nodestash", 0)

    response = nodestash("GET", "/deals?limit=1")

    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_a_plan_switch_keeps_what_was_spent_today(nodestash, sandbox):
    sandbox.set_plan("nodestash", "free")
    sandbox.set_daily_remaining("nodestash", 10)

    sandbox.set_plan("nodestash", "starter")

    assert sandbox.quota("nodestash") == {
        "plan": "starter",
        "daily_limit": 25_000,
        "daily_remaining": 25_000 - 990,
        "burst_limit": 25,
    }


def test_a_reset_goes_back_to_the_default_plan(sandbox):
    sandbox.set_plan("nodestash", "starter")
    sandbox.set_daily_remaining("nodestash", 5)

    sandbox.reset("demo")

    assert sandbox.quota("nodestash") == {
        "plan": "sandbox",
        "daily_limit": 100_000,
        "daily_remaining": 100_000,
        "burst_limit": 5,
    }


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"provider": "stora", "plan": "starter"}, 400, "bad_provider"),
        ({"provider": "unicorn", "plan": "starter"}, 404, "unknown_provider"),
        ({"provider": "nodestash", "plan": "gold"}, 400, "bad_plan"),
        ({"provider": "nodestash"}, 400, "no_changes"),
        ({"provider": "nodestash", "daily_remaining": -1}, 400, "bad_daily_remaining"),
        (
            {"provider": "nodestash", "plan": "free", "daily_remaining": 1001},
            400,
            "bad_daily_remaining",
        ),
        ({"provider": "nodestash", "plan": "free", "burst": 3}, 400, "unknown_field"),
    ],
)
def test_bad_plan_requests_are_refused_and_change_nothing(control, sandbox, body, status, code):
    response = control("POST", "plan", json=body)

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert sandbox.quota("nodestash")["plan"] == "sandbox"


def test_python_refuses_plans_for_stora_and_unknown_plans(sandbox):
    with pytest.raises(ValueError):
        sandbox.set_plan("stora", "starter")
    with pytest.raises(KeyError):
        sandbox.set_plan("nodestash", "gold")
    with pytest.raises(ValueError):
        sandbox.set_daily_remaining("nodestash", 100_001)
