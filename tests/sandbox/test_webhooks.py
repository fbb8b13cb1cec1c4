"""Stora webhooks from the sandbox (stora.md §15) over real HTTP: endpoint registration, signed
deliveries on every deal change, Stora-like retries, and the faults tests inject."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.sandbox.test_stora_contract import StoraApi, assert_error

SECRET = "whsec_test_secret"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)["event"]

    def signature_ok(self, secret: str = SECRET, *, tolerance: int = 300) -> bool:
        """DealDesk's check: HMAC-SHA256 over "{t}.{raw body}", and t no older than 5 min."""
        parts = dict(p.split("=", 1) for p in self.headers["X-Stora-Signature"].split(","))
        signed = parts["t"].encode() + b"." + self.body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(parts["t"])) <= tolerance
        return hmac.compare_digest(expected, parts["v1"]) and fresh


@dataclass
class Receiver:
    """A webhook receiver on loopback: records every POST, answers from ``statuses`` (then 200)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    sleep: float = 0.0
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(state.sleep)
            with state.arrived:
                state.received.append(Received(dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
                state.arrived.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/stora/stora/"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(sandbox, stora_info) -> StoraApi:
    sandbox.set_rate_limiting("stora", False)
    return StoraApi(stora_info.base_url, stora_info.api_key)


@pytest.fixture
def registered(sandbox, receiver) -> dict[str, Any]:
    sandbox.set_webhook_retry_scale(0.05)
    return sandbox.register_webhook(receiver.url, secret=SECRET)


@pytest.fixture
def control(sandbox_server):
    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"{sandbox_server.url}/__sandbox/{path}"
        return requests.request(method, url, timeout=10, **kwargs)

    return call


def an_open_deal(api: StoraApi) -> dict[str, Any]:
    return api.deal_with("open")


# --- Registration through the API ---------------------------------------------------------------


def test_registering_an_endpoint_returns_its_secret_once(api):
    body = {
        "name": "DealDesk",
        "api_version": "2025-09",
        "url": "https://dealdesk.example/webhooks/stora/stora/",
        "event_types": ["deal.updated", "deal.lost"],
        "description": "Live updates",
        "metadata": {"team": "sales"},
    }

    response = api.post("/webhook_endpoints", body, key="register-1")

    assert response.status_code == 201
    endpoint = response.json()["webhook_endpoint"]
    assert endpoint["id"].startswith("whe_") and endpoint["secret"].startswith("whsec_")
    assert {k: endpoint[k] for k in body} == body
    listed = api.get("/webhook_endpoints").json()
    assert [e["id"] for e in listed["webhook_endpoints"]] == [endpoint["id"]]
    assert "secret" not in listed["webhook_endpoints"][0]
    shown = api.get(f"/webhook_endpoints/{endpoint['id']}").json()["webhook_endpoint"]
    assert "secret" not in shown and shown["url"] == body["url"]
    replay = api.post("/webhook_endpoints", body, key="register-1")
    assert replay.json() == response.json()  # an idempotent replay, not a second endpoint
    assert len(api.get("/webhook_endpoints").json()["webhook_endpoints"]) == 1


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/webhooks/stora/x/", "http://localhost:9/x", "http://[::1]:8/x"]
)
def test_http_to_loopback_is_accepted_as_a_sandbox_relaxation(api, url):
    response = api.post("/webhook_endpoints", {"url": url})

    assert response.status_code == 201
    assert response.json()["webhook_endpoint"]["event_types"] == ["deal.updated", "deal.lost"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"url": "http://dealdesk.example/hook"}, "/url"),
        ({"url": "ftp://dealdesk.example/hook"}, "/url"),
        ({"url": "https://"}, "/url"),
        ({}, "/url"),
        ({"url": "https://x.example", "event_types": ["deal.created"]}, "/event_types"),
        ({"url": "https://x.example", "api_version": "2024-01"}, "/api_version"),
        ({"url": "https://x.example", "colour": "red"}, "/colour"),
    ],
)
def test_bad_registrations_are_refused(api, sandbox, body, pointer):
    error = assert_error(api.post("/webhook_endpoints", body), 422, "invalid_content")

    assert pointer in {d["pointer"] for d in error["details"]}
    assert sandbox.webhook_endpoints() == []


def test_deleting_an_endpoint_stops_its_deliveries(api, sandbox, receiver):
    endpoint = api.post("/webhook_endpoints", {"url": receiver.url}).json()["webhook_endpoint"]

    response = api.session.delete(f"{api.base_url}/webhook_endpoints/{endpoint['id']}")

    assert (response.status_code, response.content) == (204, b"")
    assert_error(api.get(f"/webhook_endpoints/{endpoint['id']}"), 404, "resource_not_found")
    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Nobody hears"})
    assert sandbox.wait_for_webhooks(timeout=1) == []
    assert receiver.received == []


# --- Deliveries -----------------------------------------------------------------------------------


def test_a_patch_delivers_a_signed_deal_updated_with_the_deal_expanded(api, registered, receiver):
    deal = an_open_deal(api)

    patched = api.patch(f"/deals/{deal['id']}", {"name": "Renamed upstream"}).json()["deal"]

    [delivery] = receiver.wait_for(1)
    assert delivery.headers["User-Agent"] == "Stora-Webhooks/1.0"
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["X-Stora-Request-Id"]
    assert delivery.signature_ok()
    assert not delivery.signature_ok("whsec_another_secret")
    event = delivery.event
    assert set(event) == {"id", "type", "api_version", "created_at", "data"}
    assert (event["type"], event["api_version"]) == ("deal.updated", "2025-09")
    sent = event["data"]["deal"]
    assert (sent["id"], sent["name"], sent["updated_at"]) == (
        deal["id"],
        "Renamed upstream",
        patched["updated_at"],
    )
    expanded = api.show(deal["id"], expand="assignee,creator,contact,site,stage")
    assert sent == expanded


@pytest.mark.parametrize(
    ("action", "event_type"),
    [
        ("lose", "deal.lost"),
        ("win", "deal.updated"),
        ("reopen", "deal.updated"),
        ("create", "deal.updated"),
        ("mutate", "deal.updated"),
        ("mutate_to_lost", "deal.lost"),
    ],
)
def test_every_deal_change_sends_its_event(api, sandbox, registered, receiver, action, event_type):
    deal = api.deal_with("lost" if action == "reopen" else "open")
    contact = api.get("/contacts", limit=1).json()["contacts"][0]
    if action == "lose":
        answer = api.post(f"/deals/{deal['id']}/lose", {"lost_reason": "price_concerns"})
    elif action in ("win", "reopen"):
        answer = api.post(f"/deals/{deal['id']}/{action}", {})
    elif action == "create":
        answer = api.post("/deals", {"name": "New", "contact": {"id": contact["id"]}})
    else:
        changes = {"status": "lost"} if action == "mutate_to_lost" else {"name": "Elsewhere"}
        answer = sandbox.mutate_deal("stora", deal["id"], changes)
    changed = answer if isinstance(answer, dict) else answer.json()["deal"]

    [delivery] = receiver.wait_for(1)

    assert delivery.event["type"] == event_type
    assert delivery.event["data"]["deal"]["id"] == changed["id"]
    assert delivery.event["data"]["deal"]["updated_at"] == changed["updated_at"]


def test_refused_requests_and_reads_send_nothing(api, sandbox, registered, receiver):
    deal = an_open_deal(api)

    api.get(f"/deals/{deal['id']}")
    api.patch(f"/deals/{deal['id']}", {"name": ""})  # 422
    api.post(f"/deals/{deal['id']}/reopen", {})  # 409: already open
    api.patch(f"/deals/{deal['id']}", {})  # nothing to change

    assert sandbox.wait_for_webhooks(timeout=1) == []
    assert receiver.received == []


def test_an_endpoint_gets_only_the_event_types_it_asked_for(api, sandbox, receiver):
    sandbox.register_webhook(receiver.url, secret=SECRET, event_types=["deal.lost"])
    deal = an_open_deal(api)

    api.patch(f"/deals/{deal['id']}", {"name": "Not sent"})
    api.post(f"/deals/{deal['id']}/lose", {"lost_reason": "chose_competitor"})

    assert [r.event["type"] for r in receiver.wait_for(1)] == ["deal.lost"]
    assert len(sandbox.wait_for_webhooks()) == 1


def test_a_slow_receiver_never_slows_the_api(api, sandbox, registered, receiver):
    receiver.sleep = 1.5
    deal = an_open_deal(api)

    started = time.perf_counter()
    api.patch(f"/deals/{deal['id']}", {"name": "Fast answer"})
    api.get(f"/deals/{deal['id']}")
    elapsed = time.perf_counter() - started

    assert elapsed < 1.2  # the receiver takes 1.5 s: the answer did not wait for it
    assert len(receiver.wait_for(1)) == 1


def test_every_registered_endpoint_gets_each_event(api, sandbox, receiver):
    sandbox.register_webhook(receiver.url, secret=SECRET)
    sandbox.register_webhook(receiver.url + "?second=1", secret=SECRET)

    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Twice"})

    received = receiver.wait_for(2)
    assert len(received) == 2
    assert received[0].event["id"] == received[1].event["id"]


# --- Retries ------------------------------------------------------------------------------------


def test_a_failed_delivery_is_retried_with_the_same_event_until_it_succeeds(
    api, sandbox, registered, receiver
):
    receiver.statuses = [500, 503]

    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Retried"})

    received = receiver.wait_for(3)
    assert len(received) == 3
    assert len({r.event["id"] for r in received}) == 1
    assert len({r.headers["X-Stora-Request-Id"] for r in received}) == 3
    assert all(r.signature_ok() for r in received)
    attempts = sandbox.wait_for_webhooks()
    assert [(a["attempt"], a["status"], a["outcome"]) for a in attempts] == [
        (1, 500, "failed"),
        (2, 503, "failed"),
        (3, 200, "delivered"),
    ]
    time.sleep(0.3)
    assert len(receiver.received) == 3  # no retry after a success


def test_an_unreachable_endpoint_is_tried_seven_times_then_given_up(api, sandbox):
    sandbox.set_webhook_retry_scale(0)
    sandbox.register_webhook("http://127.0.0.1:9/nobody-listens", secret=SECRET)

    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Lost in the void"})

    attempts = sandbox.wait_for_webhooks(timeout=10)
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5, 6, 7]  # 1 + 6 retries, like Stora
    assert all(a["outcome"] == "failed" and a["error"] for a in attempts)
    assert attempts[0]["status"] is None


def test_retry_delays_follow_the_scale(api, sandbox, receiver):
    sandbox.register_webhook(receiver.url, secret=SECRET)
    sandbox.set_webhook_retry_scale(1)  # 0.2 s, then 1 s
    receiver.statuses = [500, 500]

    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Patience"})

    attempts = sandbox.wait_for_webhooks(3, timeout=5)
    gaps = [b["started"] - a["finished"] for a, b in itertools.pairwise(attempts)]
    assert 0.15 <= gaps[0] < 0.9
    assert 0.9 <= gaps[1] < 2.0


# --- Faults -------------------------------------------------------------------------------------


def test_a_dropped_delivery_is_never_sent_and_the_next_one_is(api, sandbox, registered, receiver):
    sandbox.webhook_fault("drop")
    deal = an_open_deal(api)

    api.patch(f"/deals/{deal['id']}", {"name": "Dropped"})
    api.patch(f"/deals/{deal['id']}", {"name": "Delivered"})

    [delivery] = receiver.wait_for(1)
    assert delivery.event["data"]["deal"]["name"] == "Delivered"
    attempts = sandbox.wait_for_webhooks()
    assert [a["outcome"] for a in attempts] == ["dropped", "delivered"]
    assert attempts[0]["faults"] == ["drop"]


def test_a_duplicated_delivery_arrives_twice_with_one_event_id(api, sandbox, registered, receiver):
    sandbox.webhook_fault("duplicate")

    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Twice"})

    received = receiver.wait_for(2)
    assert len(received) == 2
    assert received[0].body == received[1].body
    assert all(r.signature_ok() for r in received)


def test_a_delayed_delivery_arrives_late(api, sandbox, registered, receiver):
    sandbox.webhook_fault("delay", seconds=0.8)

    started = time.monotonic()
    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Late"})
    receiver.wait_for(1, timeout=5)

    assert time.monotonic() - started >= 0.8
    assert receiver.received[0].signature_ok()


@pytest.mark.parametrize("kind", ["bad_signature", "bad_body"])
def test_a_corrupted_signature_or_body_fails_verification(api, sandbox, registered, receiver, kind):
    sandbox.webhook_fault(kind)
    receiver.statuses = [400]  # as DealDesk refuses it; the retry is corrupted too

    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Tampered"})

    received = receiver.wait_for(2)
    assert not received[0].signature_ok()
    assert not received[1].signature_ok()


def test_malformed_json_is_correctly_signed_but_not_json(api, sandbox, registered, receiver):
    sandbox.webhook_fault("malformed_json")

    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Broken"})

    [delivery] = receiver.wait_for(1)
    assert delivery.signature_ok()
    with pytest.raises(ValueError):
        json.loads(delivery.body)


def test_a_stale_timestamp_is_signed_but_too_old(api, sandbox, registered, receiver):
    sandbox.webhook_fault("stale_timestamp")

    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Old news"})

    [delivery] = receiver.wait_for(1)
    assert delivery.signature_ok(tolerance=10**9)
    assert not delivery.signature_ok()  # older than S-A11's 5 minutes


def test_a_fault_applies_to_the_next_n_deliveries_only(api, sandbox, registered, receiver):
    sandbox.webhook_fault("bad_signature", 2)
    deal = an_open_deal(api)

    for name in ("One", "Two", "Three"):
        api.patch(f"/deals/{deal['id']}", {"name": name})

    sandbox.wait_for_webhooks(3)
    by_name = {r.event["data"]["deal"]["name"]: r.signature_ok() for r in receiver.received}
    assert by_name == {"One": False, "Two": False, "Three": True}


def test_a_reset_forgets_endpoints_faults_and_deliveries(api, sandbox, registered, receiver):
    sandbox.webhook_fault("drop", 5)
    api.patch(f"/deals/{an_open_deal(api)['id']}", {"name": "Before reset"})

    sandbox.reset("demo")

    assert sandbox.webhook_endpoints() == []
    assert sandbox.webhook_deliveries() == []
    assert sandbox.webhook_sender.faults() == {}


# --- Control API --------------------------------------------------------------------------------


def test_control_api_registers_injects_and_lists_deliveries(api, control, receiver):
    registered = control("POST", "webhooks", json={"url": receiver.url, "secret": SECRET})
    assert registered.status_code == 201
    assert registered.json()["webhook_endpoint"]["secret"] == SECRET
    assert control("POST", "webhooks/retry", json={"scale": 0.05}).status_code == 200
    fault = control("POST", "webhooks/faults", json={"kind": "duplicate", "count": 1})
    assert fault.json()["faults"] == {"duplicate": {"count": 1, "seconds": 0}}

    deal = an_open_deal(api)
    control("POST", f"deals/stora/{deal['id']}", json={"name": "Via control"})

    deliveries = control("GET", "webhooks/deliveries?attempts=2&timeout=5").json()["deliveries"]
    assert [(d["deal_id"], d["status"], d["faults"]) for d in deliveries] == [
        (deal["id"], 200, ["duplicate"]),
        (deal["id"], 200, ["duplicate"]),
    ]
    assert json.loads(deliveries[0]["body"])["event"]["data"]["deal"]["name"] == "Via control"
    status = control("GET", "webhooks").json()
    assert status["endpoints"][0]["url"] == receiver.url and status["retry_scale"] == 0.05
    assert control("GET", "").json()["providers"]["stora"]["webhook_endpoints"] == 1
    assert control("DELETE", "webhooks/deliveries").json() == {"cleared": True}
    assert control("DELETE", "webhooks").json()["endpoints"] == []


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("webhooks", {"url": "mailto:x@example.com"}, "bad_url"),
        ("webhooks", {"url": "http://127.0.0.1/x", "secret": ""}, "bad_secret"),
        ("webhooks", {"url": "http://127.0.0.1/x", "event_types": ["deal.won"]}, "bad_event_types"),
        ("webhooks/faults", {"kind": "explode"}, "bad_kind"),
        ("webhooks/faults", {"kind": "delay", "seconds": -1}, "bad_seconds"),
        ("webhooks/faults", {"kind": "drop", "count": 1.5}, "bad_count"),
        ("webhooks/retry", {"scale": "fast"}, "bad_scale"),
    ],
)
def test_bad_webhook_control_requests_are_refused(control, sandbox, path, body, code):
    response = control("POST", path, json=body)

    assert (response.status_code, response.json()["error"]["code"]) == (400, code)
    assert sandbox.webhook_endpoints() == [] and sandbox.webhook_sender.faults() == {}
