"""Stora webhooks into the store: the sandbox's real, signed deliveries to a live DealDesk, and
bodies signed the same way sent through Django's test client."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.sandbox.webhooks import signature_header
from dealdesk.sync.live import live_token
from dealdesk.sync.models import DealChange, SyncedDeal, WebhookEvent, WebhookSubscription
from dealdesk.sync.schedule import next_delay
from dealdesk.sync.store import store_version
from dealdesk.sync.webhooks import webhook_register, webhook_secret_set

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVER = "/webhooks/stora/stora/"


@pytest.fixture
def registered(live_server, connections, sandbox):
    """The Stora connection's endpoint registered in the sandbox through its API, pointing at the
    live server; faulted deliveries are retried at once."""
    sandbox.set_webhook_retry_scale(0)
    return webhook_register(connections["stora"], base_url=live_server.url)


def first_deal_id(sandbox) -> str:
    return sorted(sandbox.simulators["stora"].deals)[0]


def stored_name(connection, deal_id: str) -> str:
    return SyncedDeal.objects.get(connection=connection, upstream_id=deal_id).name


def signed(client: Client, body: bytes, secret: str, *, timestamp: int | None = None):
    header = signature_header(secret, timestamp or int(time.time()), body)
    return client.post(
        RECEIVER, body, content_type="application/json", HTTP_X_STORA_SIGNATURE=header
    )


def test_register_stores_the_secret_encrypted_and_the_sandbox_knows_the_url(
    registered, live_server, sandbox
):
    (endpoint,) = sandbox.webhook_endpoints()
    assert endpoint["url"] == f"{live_server.url}{RECEIVER}"
    assert registered.endpoint_id == endpoint["id"]
    assert registered.state == "enabled"
    assert endpoint["secret"] not in registered.secret_encrypted
    assert registered.get_secret() == endpoint["secret"]


def test_a_delivery_delivered_twice_is_applied_once(registered, connections, sandbox):
    deal_id = first_deal_id(sandbox)
    sandbox.webhook_fault("duplicate")
    token = live_token()

    sandbox.mutate_deal("stora", deal_id, {"name": "Renamed by a webhook"})
    deliveries = sandbox.wait_for_webhooks(attempts=2)

    assert [d["status"] for d in deliveries] == [200, 200]
    assert deliveries[0]["event_id"] == deliveries[1]["event_id"]
    assert stored_name(connections["stora"], deal_id) == "Renamed by a webhook"
    assert WebhookEvent.objects.filter(event_id=deliveries[0]["event_id"]).count() == 1
    assert DealChange.objects.filter(id__gt=token, upstream_id=deal_id).count() == 1
    subscription = WebhookSubscription.objects.get(pk=registered.pk)
    assert subscription.deliveries == 2
    assert subscription.last_delivery_at is not None


def test_a_delivery_changes_what_a_cached_list_shows(registered, connections, sandbox):
    deal_id = first_deal_id(sandbox)
    filters = DealFilters(q="renamed for the cached list")
    assert deal_list(filters=filters).total_count == 0  # cached under the store's version
    version = store_version()

    sandbox.mutate_deal("stora", deal_id, {"name": "Renamed for the cached list"})
    (delivery,) = sandbox.wait_for_webhooks(attempts=1)

    assert delivery["status"] == 200
    assert store_version() != version
    assert [d.id for d in deal_list(filters=filters).deals] == [deal_id]


@pytest.mark.parametrize(
    "fault", ["bad_signature", "bad_body", "stale_timestamp", "malformed_json"]
)
def test_a_faulted_delivery_is_refused_and_nothing_is_stored(
    registered, connections, sandbox, fault
):
    deal_id = first_deal_id(sandbox)
    before = stored_name(connections["stora"], deal_id)
    sandbox.webhook_fault(fault)
    token = live_token()

    sandbox.mutate_deal("stora", deal_id, {"name": "Must not arrive"})
    (delivery, *_) = sandbox.wait_for_webhooks(attempts=1)

    assert delivery["status"] in (400, 401)
    assert stored_name(connections["stora"], deal_id) == before
    assert not WebhookEvent.objects.exists()
    assert live_token() == token
    assert WebhookSubscription.objects.get(pk=registered.pk).refused >= 1


def test_a_delivery_signed_with_another_secret_is_refused(registered, connections, sandbox):
    webhook_secret_set(connections["stora"], "whsec_pasted_from_another_endpoint")
    deal_id = first_deal_id(sandbox)
    before = stored_name(connections["stora"], deal_id)

    sandbox.mutate_deal("stora", deal_id, {"name": "Must not arrive"})
    (delivery, *_) = sandbox.wait_for_webhooks(attempts=1)

    assert delivery["status"] == 401
    assert stored_name(connections["stora"], deal_id) == before
    assert not WebhookEvent.objects.exists()


def test_a_pasted_backoffice_secret_is_used(live_server, connections, sandbox):
    sandbox.register_webhook(f"{live_server.url}{RECEIVER}", secret="whsec_from_backoffice")
    webhook_secret_set(connections["stora"], "whsec_from_backoffice")
    deal_id = first_deal_id(sandbox)

    sandbox.mutate_deal("stora", deal_id, {"name": "Via a pasted secret"})
    (delivery,) = sandbox.wait_for_webhooks(attempts=1)

    assert delivery["status"] == 200
    assert stored_name(connections["stora"], deal_id) == "Via a pasted secret"


def test_unsigned_and_oversized_bodies_are_refused(registered, connections, sandbox):
    client = Client()
    secret = registered.get_secret()
    token = live_token()
    unsigned = client.post(RECEIVER, b'{"event": {}}', content_type="application/json")
    huge = signed(client, b'{"event": {"id": "evt_1", "pad": "' + b"x" * 2_000_000 + b'"}}', secret)
    other_slug = client.post("/webhooks/stora/nodestash/", b"{}", content_type="application/json")

    assert unsigned.status_code == 401
    assert huge.status_code == 413
    assert other_slug.status_code == 404  # the slug names a connection of another provider
    assert not WebhookEvent.objects.exists()
    assert live_token() == token


def test_an_event_older_than_the_stored_deal_is_ignored(registered, connections, sandbox):
    deal_id = first_deal_id(sandbox)
    sandbox.mutate_deal("stora", deal_id, {"name": "First"})
    (first,) = sandbox.wait_for_webhooks(attempts=1)
    sandbox.mutate_deal("stora", deal_id, {"name": "Second"})
    sandbox.wait_for_webhooks(attempts=2)
    assert stored_name(connections["stora"], deal_id) == "Second"

    # The first event arrives late, under another id (a retry of a lost delivery, say).
    late = json.loads(first["body"])
    late["event"]["id"] = "evt_late_retry"
    response = signed(Client(), json.dumps(late).encode(), registered.get_secret())

    assert response.status_code == 200
    assert stored_name(connections["stora"], deal_id) == "Second"
    assert WebhookEvent.objects.filter(event_id="evt_late_retry").exists()


def test_a_signature_older_than_five_minutes_is_refused(registered, connections, sandbox):
    deal_id = first_deal_id(sandbox)
    sandbox.mutate_deal("stora", deal_id, {"name": "Fresh"})
    (delivery,) = sandbox.wait_for_webhooks(attempts=1)
    body = json.loads(delivery["body"])
    body["event"]["id"] = "evt_replayed"
    encoded = json.dumps(body).encode()
    secret = registered.get_secret()

    stale = signed(Client(), encoded, secret, timestamp=int(time.time()) - 301)
    fresh = signed(Client(), encoded, secret, timestamp=int(time.time()) - 240)

    assert stale.status_code == 401
    assert fresh.status_code == 200


def test_polling_slows_down_with_webhooks_on_but_never_stops(registered, connections, settings):
    from django.utils import timezone

    from dealdesk.sync.engine import SyncReport, sync_state_for
    from dealdesk.sync.models import TeamActivity

    settings.DEALDESK_SYNC_ACTIVE_INTERVAL = 5
    settings.DEALDESK_SYNC_IDLE_INTERVAL = 300
    TeamActivity.objects.update_or_create(pk=1, defaults={"last_seen_at": timezone.now()})
    state = sync_state_for(connections["stora"])
    report = SyncReport(connection_slug="stora")

    with_webhook = next_delay(report, state, None)
    WebhookSubscription.objects.filter(pk=registered.pk).update(secret_encrypted="")
    without = next_delay(report, state, None)

    assert without == 5
    assert with_webhook == 30
