"""The sandbox core over real HTTP: dispatch, the request log, faults, and garbage that must not
crash it. Small fake simulators stand in for Stora and nodestash, so these tests pin down the
core alone."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
import requests

from dealdesk.sandbox.core import (
    MAX_BODY_BYTES,
    Sandbox,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
)

TOKEN = "fake-token"


class FakeSimulator:
    """Just enough of a vendor API: GET/POST /deals and GET /deals/<id>, bearer auth."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.token = TOKEN
        self.rate_limiting = True
        self.deals: dict[str, dict[str, Any]] = {}

    def reset(self, seed: str) -> None:
        if seed not in ("demo", "large") and not seed.isdigit():
            raise ValueError(f"unknown seed {seed!r}")
        self.deals = {"d1": {"id": "d1", "name": "Alpha", "version": 1}}

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.bearer_token != self.token:
            return SandboxResponse(401, {"error": "unauthorised"})
        if request.path == "/boom":
            raise RuntimeError("simulator bug")
        if request.path == "/deals" and request.method == "GET":
            return SandboxResponse(200, {"data": list(self.deals.values())})
        if request.path == "/deals" and request.method == "POST":
            deal = request.json()
            self.deals[deal["id"]] = deal
            return SandboxResponse(201, deal)
        deal_id = request.path.removeprefix("/deals/")
        if request.method == "GET" and deal_id in self.deals:
            return SandboxResponse(200, self.deals[deal_id])
        return SandboxResponse(404, {"error": "not_found"})

    def mutate_deal(self, deal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        deal = self.deals[deal_id]
        if "version" in changes:
            raise ValueError("version is not editable")
        deal.update(changes, version=deal["version"] + 1)
        return dict(deal)


@pytest.fixture(scope="module")
def fake_server():
    server = SandboxServer(Sandbox([FakeSimulator("stora"), FakeSimulator("nodestash")])).start()
    yield server
    server.stop()


@pytest.fixture
def fake_sandbox(fake_server) -> Sandbox:
    fake_server.sandbox.reset("demo")
    return fake_server.sandbox


def get(server: SandboxServer, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
    return requests.get(server.url + path, headers=headers, timeout=5, **kwargs)


def raw_exchange(server: SandboxServer, request: bytes) -> bytes:
    """Send bytes as they are and read until the server closes or stops talking."""
    with socket.create_connection((server.host, server.port), timeout=5) as conn:
        conn.sendall(request)
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


# --- dispatch -------------------------------------------------------------------------------


def test_request_under_a_prefix_reaches_that_simulator(fake_server, fake_sandbox):
    response = get(fake_server, "/stora/deals")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"data": [{"id": "d1", "name": "Alpha", "version": 1}]}


def test_unknown_prefix_is_a_404_and_not_logged(fake_server, fake_sandbox):
    response = get(fake_server, "/elsewhere/deals")

    assert response.status_code == 404
    assert fake_sandbox.requests() == []


def test_simulator_exception_becomes_a_500_and_the_server_keeps_serving(fake_server, fake_sandbox):
    response = get(fake_server, "/stora/boom")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "sandbox_error"
    assert get(fake_server, "/stora/deals").status_code == 200


def test_request_log_records_each_call_with_timings_and_status(fake_server, fake_sandbox):
    before = time.time()
    requests.post(
        fake_server.url + "/nodestash/deals?expand=owner",
        json={"id": "d2", "name": "Beta"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )

    [record] = fake_sandbox.requests("nodestash")
    assert (record.method, record.path, record.status) == ("POST", "/deals", 201)
    assert record.query == {"expand": ["owner"]}
    assert record.body == {"id": "d2", "name": "Beta"}
    assert record.headers["authorization"] == f"Bearer {TOKEN}"
    assert before <= record.started <= record.finished <= time.time()
    assert fake_sandbox.requests("stora") == []


def test_control_paths_are_not_logged(fake_server, fake_sandbox):
    requests.get(fake_server.url + "/__sandbox/", timeout=5)

    assert fake_sandbox.requests() == []


# --- faults ---------------------------------------------------------------------------------


def test_latency_delays_each_call_but_concurrent_calls_overlap(fake_server, fake_sandbox):
    # 1 s each: two calls one after the other take 2 s, overlapping ones well under that, with
    # room for a loaded machine's thread start-up.
    fake_sandbox.set_latency("stora", 1000)
    durations: list[float] = []

    def timed_call() -> None:
        started = time.monotonic()
        get(fake_server, "/stora/deals")
        durations.append(time.monotonic() - started)

    started = time.monotonic()
    threads = [threading.Thread(target=timed_call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.monotonic() - started

    assert len(durations) == 2
    assert all(duration >= 1.0 for duration in durations)
    assert total < 1.8
    assert get(fake_server, "/nodestash/deals").elapsed.total_seconds() < 0.9  # not delayed


def test_fail_next_answers_the_next_n_requests_with_the_chosen_failure(fake_server, fake_sandbox):
    fake_sandbox.fail_next("stora", 2, 503, {"error": "down"}, {"Retry-After": "1"})

    first, second, third = (get(fake_server, "/stora/deals") for _ in range(3))

    assert (first.status_code, first.json(), first.headers["Retry-After"]) == (
        503,
        {"error": "down"},
        "1",
    )
    assert second.status_code == 503
    assert third.status_code == 200
    assert [r.status for r in fake_sandbox.requests("stora")] == [503, 503, 200]


def test_fail_next_with_a_string_body_sends_it_verbatim(fake_server, fake_sandbox):
    fake_sandbox.fail_next("all", 1, 502, "<html>Bad gateway</html>")

    stora, nodestash = get(fake_server, "/stora/deals"), get(fake_server, "/nodestash/deals")

    assert (stora.status_code, stora.text) == (502, "<html>Bad gateway</html>")
    assert (nodestash.status_code, nodestash.text) == (502, "<html>Bad gateway</html>")


def test_outage_refuses_the_call_with_a_connection_error(fake_server, fake_sandbox):
    fake_sandbox.set_outage("stora", True)

    with pytest.raises(requests.ConnectionError):
        get(fake_server, "/stora/deals")
    assert get(fake_server, "/nodestash/deals").status_code == 200

    fake_sandbox.set_outage("stora", False)
    assert get(fake_server, "/stora/deals").status_code == 200


def test_reset_restores_seed_data_and_clears_faults_and_log(fake_server, fake_sandbox):
    fake_sandbox.mutate_deal("stora", "d1", {"name": "Changed"})
    fake_sandbox.set_latency("all", 50)
    fake_sandbox.fail_next("stora", 3, 500)
    fake_sandbox.set_outage("nodestash", True)
    fake_sandbox.set_rate_limiting("stora", False)
    get(fake_server, "/stora/deals")

    fake_sandbox.reset()

    assert get(fake_server, "/stora/deals/d1").json()["name"] == "Alpha"
    assert get(fake_server, "/nodestash/deals").status_code == 200
    assert fake_sandbox.simulators["stora"].rate_limiting is True
    assert all(f.latency_ms == 0 and not f.fail_next for f in fake_sandbox.faults.values())
    assert len(fake_sandbox.requests()) == 2


def test_mutate_deal_changes_it_behind_the_dashboards_back(fake_server, fake_sandbox):
    deal = fake_sandbox.mutate_deal("nodestash", "d1", {"name": "Renamed"})

    assert deal == {"id": "d1", "name": "Renamed", "version": 2}
    assert get(fake_server, "/nodestash/deals/d1").json() == deal
    assert [r.method for r in fake_sandbox.requests()] == ["GET"]  # the change itself is silent


def test_unknown_provider_in_a_fault_is_a_key_error(fake_sandbox):
    with pytest.raises(KeyError):
        fake_sandbox.set_latency("pipedrive", 10)


# --- garbage never crashes it -----------------------------------------------------------------


@pytest.mark.parametrize("length", [b"abc", b"-5", b"1e3", b"\xd9\xa3"])
def test_malformed_content_length_is_a_400(fake_server, fake_sandbox, length):
    reply = raw_exchange(
        fake_server,
        b"POST /stora/deals HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}",
    )

    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400")
    assert get(fake_server, "/stora/deals").status_code == 200


def test_chunked_body_is_refused_with_411(fake_server, fake_sandbox):
    reply = raw_exchange(
        fake_server,
        b"POST /stora/deals HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
    )

    assert reply.startswith(b"HTTP/1.1 411")
    assert get(fake_server, "/stora/deals").status_code == 200


def test_body_over_the_limit_is_a_413_and_not_stored(fake_server, fake_sandbox):
    response = requests.post(
        fake_server.url + "/stora/deals",
        data=b"x" * (MAX_BODY_BYTES + 1),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert fake_sandbox.requests() == []
    assert get(fake_server, "/stora/deals").status_code == 200


def test_body_shorter_than_its_content_length_does_not_block_other_clients(
    fake_server, fake_sandbox
):
    with socket.create_connection((fake_server.host, fake_server.port), timeout=5) as stalled:
        stalled.sendall(b"POST /stora/deals HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")

        assert get(fake_server, "/stora/deals").status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b"[" * 100_000, json.dumps({"id": 1}).encode()[:-1]],
    ids=["invalid", "not-utf8", "deeply-nested", "truncated"],
)
def test_invalid_json_is_logged_as_text_and_answered(fake_server, fake_sandbox, body):
    response = requests.post(
        fake_server.url + "/stora/deals",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=5,
    )

    # The fake does not catch BadJson; the core turns it into a 500 rather than dying.
    assert response.status_code == 500
    [record] = fake_sandbox.requests()
    assert isinstance(record.body, str)
    assert get(fake_server, "/stora/deals/d1").json()["name"] == "Alpha"


def test_garbage_request_line_gets_an_error_and_the_server_lives(fake_server, fake_sandbox):
    reply = raw_exchange(fake_server, b"\x00\x01\x02 garbage\r\n\r\n")

    assert b"400" in reply.split(b"\r\n", 1)[0]
    assert get(fake_server, "/stora/deals").status_code == 200


def test_injected_headers_cannot_break_the_response(fake_server, fake_sandbox):
    fake_sandbox.fail_next(
        "stora",
        1,
        500,
        "oops",
        {"Content-Length": "999", "X-Bad": "a\r\nInjected: yes", "X-Ok": "fine"},
    )

    response = get(fake_server, "/stora/deals")

    assert (response.status_code, response.text, response.headers["X-Ok"]) == (500, "oops", "fine")
    assert "Injected" not in response.headers
    assert get(fake_server, "/stora/deals").status_code == 200
