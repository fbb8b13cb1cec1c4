"""Webhooks in the admin: Register webhook per connection, pasting a Backoffice secret, and the
endpoint's state and last delivery on the list."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from dealdesk.sync.models import SyncState, WebhookSubscription

pytestmark = pytest.mark.django_db

SYNC_CHANGELIST = reverse("admin:sync_syncstate_changelist")
WEBHOOKS = reverse("admin:sync_webhooksubscription_changelist")


def register(admin_client, connection):
    state = SyncState.objects.get(connection=connection)
    return admin_client.post(
        SYNC_CHANGELIST,
        {"action": "register_webhook", "_selected_action": [state.pk]},
        follow=True,
    ).content.decode()


def test_register_webhook_creates_the_endpoint_upstream_and_keeps_its_secret_encrypted(
    admin_client, connections, sandbox, settings
):
    settings.DEALDESK_PUBLIC_URL = "https://deals.example.com"

    html = register(admin_client, connections["stora"])

    (endpoint,) = sandbox.webhook_endpoints()
    assert endpoint["url"] == "https://deals.example.com/webhooks/stora/stora/"
    assert "webhook registered at https://deals.example.com/webhooks/stora/stora/" in html
    subscription = WebhookSubscription.objects.get(connection=connections["stora"])
    assert subscription.get_secret() == endpoint["secret"]
    assert endpoint["secret"] not in subscription.secret_encrypted
    listing = admin_client.get(WEBHOOKS).content.decode()
    assert "enabled" in listing
    assert endpoint["secret"] not in listing


def test_register_webhook_without_a_public_url_says_what_to_set(
    admin_client, connections, sandbox, settings
):
    settings.DEALDESK_PUBLIC_URL = ""

    html = register(admin_client, connections["stora"])

    assert "Set DEALDESK_PUBLIC_URL" in html
    assert sandbox.webhook_endpoints() == []
    assert not WebhookSubscription.objects.exists()


def test_register_webhook_on_a_provider_without_webhooks_says_so(
    admin_client, connections, settings
):
    settings.DEALDESK_PUBLIC_URL = "https://deals.example.com"

    html = register(admin_client, connections["nodestash"])

    assert "sends no webhooks" in html
    assert not WebhookSubscription.objects.exists()


def test_a_secret_made_in_backoffice_can_be_pasted_and_the_list_shows_the_last_delivery(
    admin_client, connections
):
    response = admin_client.post(
        reverse("admin:sync_webhooksubscription_add"),
        {"connection": connections["stora"].pk, "secret": "whsec_pasted_in_admin"},
    )
    assert response.status_code == 302
    subscription = WebhookSubscription.objects.get(connection=connections["stora"])
    assert subscription.get_secret() == "whsec_pasted_in_admin"
    WebhookSubscription.objects.filter(pk=subscription.pk).update(last_delivery_at=timezone.now())

    listing = admin_client.get(WEBHOOKS).content.decode()

    assert "set by hand" in listing
    assert "whsec_pasted_in_admin" not in listing
    assert "ago" in listing  # the last delivery received
