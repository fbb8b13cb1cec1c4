"""The ``/__sandbox/`` control API over real HTTP, against the fake simulators of test_core."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from dealdesk.sandbox.core import Sandbox, SandboxServer
from tests.sandbox.test_core import TOKEN, FakeSimulator


@pytest.fixture(scope="module")
def control_server():
    server = SandboxServer(Sandbox([FakeSimulator("stora"), FakeSimulator("nodestash")])).start()
    yield server
    server.stop()


@pytest.fixture
def server(control_server) -> SandboxServer:
    control_server.sandbox.reset("demo")
    return control_server


def control(server: SandboxServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{server.url}/__sandbox/{path}", timeout=5, **kwargs)


def call(server: SandboxServer, provider: str, path: str = "/deals") -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return requests.get(f"{server.url}/{provider}{path}", headers=headers, timeout=5)


def error_code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


def test_status_shows_seed_faults_and_request_counts(server):
    call(server, "stora")
    server.sandbox.set_latency("nodestash", 25)

    status = control(server, "GET", "").json()

    assert status == {
        "seed": "demo",
        "requests": 1,
        "providers": {
            "stora": {
                "latency_ms": 0,
                "failing_next": 0,
                "outage": False,
                "rate_limiting": True,
                "variants": [],
                "requests": 1,
            },
            "nodestash": {
                "latency_ms": 25,
                "failing_next": 0,
                "outage": False,
                "rate_limiting": True,
                "variants": [],
                "requests": 0,
            },
        },
    }
    assert control(server, "GET", "", params={"x": "1"}).status_code == 200
    assert requests.get(f"{server.url}/__sandbox", timeout=5).status_code == 200


def test_reset_restores_seed_data_and_can_switch_seed(server):
    server.sandbox.mutate_deal("stora", "d1", {"name": "Changed"})
    server.sandbox.set_outage("stora", True)

    response = control(server, "POST", "reset", json={"seed": "large"})

    assert response.status_code == 200
    assert response.json()["seed"] == "large"
    assert call(server, "stora", "/deals/d1").json()["name"] == "Alpha"
    assert control(server, "POST", "reset", json={"seed": 42}).json()["seed"] == "42"
    assert control(server, "POST", "reset").json()["seed"] == "42"


@pytest.mark.parametrize("seed", ["nonsense", "", True, ["demo"], "1; rm -rf"])
def test_reset_to_an_unknown_seed_is_a_400_and_keeps_the_data(server, seed):
    server.sandbox.mutate_deal("stora", "d1", {"name": "Changed"})

    response = control(server, "POST", "reset", json={"seed": seed})

    assert (response.status_code, error_code(response)) == (400, "bad_seed")
    assert server.sandbox.seed == "demo"
    assert call(server, "stora", "/deals/d1").json()["name"] == "Changed"


def test_latency_for_one_provider_or_all(server):
    assert control(server, "POST", "latency", json={"provider": "stora", "ms": 200}).ok
    assert call(server, "stora").elapsed.total_seconds() >= 0.2
    assert call(server, "nodestash").elapsed.total_seconds() < 0.2

    control(server, "POST", "latency", json={"provider": "all", "ms": 0})

    assert {f.latency_ms for f in server.sandbox.faults.values()} == {0}


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"provider": "stora", "ms": "100"}, 400, "bad_ms"),
        ({"provider": "stora", "ms": -1}, 400, "bad_ms"),
        ({"provider": "stora", "ms": 1.5}, 400, "bad_ms"),
        ({"provider": "stora", "ms": True}, 400, "bad_ms"),
        ({"provider": "stora", "ms": 10**9}, 400, "bad_ms"),
        ({"provider": "stora"}, 400, "bad_ms"),
        ({"ms": 100}, 400, "bad_provider"),
        ({"provider": 3, "ms": 100}, 400, "bad_provider"),
        ({"provider": "pipedrive", "ms": 100}, 404, "unknown_provider"),
        ({"provider": "stora", "ms": 100, "typo": 1}, 400, "unknown_field"),
    ],
)
def test_latency_bad_input_is_rejected_without_change(server, payload, status, code):
    response = control(server, "POST", "latency", json=payload)

    assert (response.status_code, error_code(response)) == (status, code)
    assert response.json()["error"]["message"]
    assert {f.latency_ms for f in server.sandbox.faults.values()} == {0}


def test_fail_sends_the_chosen_status_json_body_and_headers_n_times(server):
    response = control(
        server,
        "POST",
        "fail",
        json={
            "provider": "nodestash",
            "count": 2,
            "status": 429,
            "body": {"error": {"code": "RATE_LIMITED"}},
            "headers": {"Retry-After": 2},
        },
    )
    assert response.json()["providers"]["nodestash"]["failing_next"] == 2

    first, second, third = (call(server, "nodestash") for _ in range(3))

    assert (first.status_code, first.headers["Retry-After"]) == (429, "2")
    assert first.json() == {"error": {"code": "RATE_LIMITED"}}
    assert second.status_code == 429
    assert third.status_code == 200
    assert call(server, "stora").status_code == 200


def test_fail_with_a_string_body_sends_it_verbatim(server):
    control(
        server,
        "POST",
        "fail",
        json={"provider": "stora", "count": 1, "status": 200, "body": '{"data": [tru'},
    )

    response = call(server, "stora")

    assert (response.status_code, response.text) == (200, '{"data": [tru')


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"provider": "stora", "count": 1}, "bad_status"),
        ({"provider": "stora", "count": 1, "status": 99}, "bad_status"),
        ({"provider": "stora", "count": 1, "status": 101}, "bad_status"),
        ({"provider": "stora", "count": 1, "status": "500"}, "bad_status"),
        ({"provider": "stora", "count": -1, "status": 500}, "bad_count"),
        ({"provider": "stora", "count": 10**6, "status": 500}, "bad_count"),
        ({"provider": "stora", "status": 500}, "bad_count"),
        ({"provider": "stora", "count": 1, "status": 500, "headers": ["X"]}, "bad_headers"),
        (
            {"provider": "stora", "count": 1, "status": 500, "headers": {"X-A": "1\r\nX-B: 2"}},
            "bad_headers",
        ),
        (
            {"provider": "stora", "count": 1, "status": 500, "headers": {"Bad Name": "1"}},
            "bad_headers",
        ),
        (
            {"provider": "stora", "count": 1, "status": 500, "headers": {"Content-Length": "9"}},
            "bad_headers",
        ),
        ({"provider": "stora", "count": 1, "status": 500, "headers": {"X": None}}, "bad_headers"),
        ({"provider": "stora", "count": 1, "status": 500, "headers": {"X": "é"}}, "bad_headers"),
    ],
)
def test_fail_bad_input_is_a_400_and_sets_no_fault(server, payload, code):
    response = control(server, "POST", "fail", json=payload)

    assert (response.status_code, error_code(response)) == (400, code)
    assert call(server, "stora").status_code == 200


def test_rate_limit_switches_the_simulators_rate_limiting(server):
    response = control(server, "POST", "rate-limit", json={"provider": "all", "enabled": False})

    assert response.status_code == 200
    assert [s.rate_limiting for s in server.sandbox.simulators.values()] == [False, False]

    control(server, "POST", "rate-limit", json={"provider": "stora", "enabled": True})

    assert server.sandbox.simulators["stora"].rate_limiting is True
    assert server.sandbox.simulators["nodestash"].rate_limiting is False


@pytest.mark.parametrize("route", ["rate-limit", "outage"])
@pytest.mark.parametrize("enabled", ["false", 0, None])
def test_switches_need_a_real_boolean(server, route, enabled):
    response = control(server, "POST", route, json={"provider": "stora", "enabled": enabled})

    assert (response.status_code, error_code(response)) == (400, "bad_enabled")


def test_outage_makes_provider_calls_fail_to_connect_while_control_still_answers(server):
    control(server, "POST", "outage", json={"provider": "stora", "enabled": True})

    with pytest.raises(requests.ConnectionError):
        call(server, "stora")
    assert call(server, "nodestash").status_code == 200
    assert control(server, "GET", "").json()["providers"]["stora"]["outage"] is True

    control(server, "POST", "outage", json={"provider": "stora", "enabled": False})

    assert call(server, "stora").status_code == 200


def test_deal_mutation_changes_it_behind_the_dashboards_back(server):
    response = control(server, "POST", "deals/stora/d1", json={"name": "Changed by Sam"})

    assert response.status_code == 200
    assert response.json() == {"deal": {"id": "d1", "name": "Changed by Sam", "version": 2}}
    assert call(server, "stora", "/deals/d1").json()["name"] == "Changed by Sam"
    assert call(server, "nodestash", "/deals/d1").json()["name"] == "Alpha"


@pytest.mark.parametrize(
    ("path", "payload", "status", "code"),
    [
        ("deals/stora/missing", {"name": "x"}, 404, "unknown_deal"),
        ("deals/pipedrive/d1", {"name": "x"}, 404, "unknown_provider"),
        ("deals/all/d1", {"name": "x"}, 404, "unknown_provider"),
        ("deals/stora/d1", {"version": 9}, 400, "bad_changes"),
        ("deals/stora/d1", {"id": "d2"}, 400, "bad_changes"),
        ("deals/stora/d1", {}, 400, "no_changes"),
        ("deals/stora/d1", ["name"], 400, "bad_json"),
        ("deals/stora", {"name": "x"}, 404, "unknown_endpoint"),
        ("deals/stora/d1/extra", {"name": "x"}, 404, "unknown_endpoint"),
    ],
)
def test_deal_mutation_bad_input(server, path, payload, status, code):
    response = control(server, "POST", path, json=payload)

    assert (response.status_code, error_code(response)) == (status, code)
    assert call(server, "stora", "/deals/d1").json()["name"] == "Alpha"


def test_requests_lists_the_log_without_the_authorization_header(server):
    call(server, "stora", "/deals?page=2")
    call(server, "nodestash")

    records = control(server, "GET", "requests").json()["requests"]
    stora_only = control(server, "GET", "requests", params={"provider": "stora"}).json()

    assert [(r["provider"], r["method"], r["path"], r["status"]) for r in records] == [
        ("stora", "GET", "/deals", 200),
        ("nodestash", "GET", "/deals", 200),
    ]
    first = records[0]
    assert first["query"] == {"page": ["2"]}
    assert "authorization" not in first["headers"]
    assert TOKEN not in str(records)
    assert first["started"] <= first["finished"]
    assert first["duration_ms"] >= 0
    assert first["body"] is None
    assert len(stora_only["requests"]) == 1


def test_requests_for_an_unknown_provider_is_a_404(server):
    response = control(server, "GET", "requests", params={"provider": "pipedrive"})

    assert (response.status_code, error_code(response)) == (404, "unknown_provider")


def test_delete_requests_clears_the_log(server):
    call(server, "stora")

    assert control(server, "DELETE", "requests").status_code == 200
    assert control(server, "GET", "requests").json() == {"requests": []}


@pytest.mark.parametrize("body", [b"{nope", b"\xff", b"[" * 50_000, b"[1, 2]", b'"stora"', b"null"])
def test_a_body_that_is_not_a_json_object_is_a_400(server, body):
    response = control(server, "POST", "latency", data=body)

    assert (response.status_code, error_code(response)) == (400, "bad_json")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "latency", 405),
        ("POST", "", 405),
        ("PUT", "requests", 405),
        ("GET", "nothing-here", 404),
        ("POST", "deals", 404),
    ],
)
def test_wrong_method_or_path_is_answered_not_crashed(server, method, path, status):
    response = control(server, method, path, json={})

    assert response.status_code == status
    assert response.json()["error"]["message"]
    assert control(server, "GET", "").status_code == 200


# --- against the real simulators (the session sandbox of tests/conftest.py) ---------------------


def test_mutating_a_real_stora_deal_shows_in_its_api_with_a_later_updated_at(
    sandbox_server, sandbox, stora_info
):
    headers = {"Authorization": f"Bearer {stora_info.api_key}"}
    deals_url = f"{stora_info.base_url}/2025-09/deals"
    before = requests.get(deals_url, headers=headers, timeout=5).json()["deals"][0]

    response = control(
        sandbox_server, "POST", f"deals/stora/{before['id']}", json={"name": "Changed by Sam"}
    )

    after = requests.get(f"{deals_url}/{before['id']}", headers=headers, timeout=5).json()["deal"]
    assert response.status_code == 200
    assert response.json()["deal"]["name"] == "Changed by Sam"
    assert after["name"] == "Changed by Sam"
    assert after["updated_at"] > before["updated_at"]


def test_mutating_an_unknown_real_deal_is_a_404(sandbox_server, sandbox):
    for provider in ("stora", "nodestash"):
        response = control(sandbox_server, "POST", f"deals/{provider}/nope", json={"name": "x"})

        assert (response.status_code, error_code(response)) == (404, "unknown_deal")


def test_real_sandbox_reset_over_http_undoes_a_mutation(sandbox_server, sandbox, nodestash_info):
    headers = {"Authorization": f"Bearer {nodestash_info.api_key}"}
    deals_url = f"{nodestash_info.base_url}/deals"
    deal = requests.get(deals_url, headers=headers, timeout=5).json()["data"][0]
    control(sandbox_server, "POST", f"deals/nodestash/{deal['id']}", json={"title": "Renamed"})

    assert control(sandbox_server, "POST", "reset", json={"seed": "demo"}).status_code == 200

    again = requests.get(f"{deals_url}/{deal['id']}", headers=headers, timeout=5).json()
    assert again["data"]["attributes"]["title"] == deal["attributes"]["title"]


# --- Only loopback callers, never a web page ---------------------------------------------------


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "192.168.1.20:{port}", "127.0.0.1.evil.example"]
)
def test_a_foreign_host_header_is_refused_and_changes_nothing(server, host):
    response = control(
        server,
        "POST",
        "latency",
        json={"provider": "all", "ms": 500},
        headers={"Host": host.format(port=server.port)},
    )

    assert response.status_code == 403
    assert error_code(response) == "forbidden_host"
    assert server.sandbox.faults["stora"].latency_ms == 0


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "localhost"]
)
def test_loopback_host_headers_are_answered(server, host):
    response = control(server, "GET", "", headers={"Host": host.format(port=server.port)})

    assert response.status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:3000"])
def test_a_request_from_a_web_page_on_another_origin_is_refused(server, origin):
    for method, path, body in (
        ("POST", "reset", {}),
        ("POST", "outage", {"provider": "all", "enabled": True}),
        ("GET", "requests", None),
    ):
        response = control(server, method, path, json=body, headers={"Origin": origin})

        assert response.status_code == 403, path
        assert error_code(response) == "forbidden_origin"
    assert server.sandbox.faults["stora"].outage is False


def test_the_sandboxs_own_origin_is_allowed(server):
    response = control(
        server,
        "POST",
        "latency",
        json={"provider": "stora", "ms": 5},
        headers={"Origin": server.url},
    )

    assert response.status_code == 200
    assert server.sandbox.faults["stora"].latency_ms == 5
