"""Webhook deliveries into the store, and registering the endpoint upstream.

The receiver (``views.webhook_receive``) hands the raw body here. ``webhook_apply`` checks it with
the connection's adapter (signature, freshness, shape: the vendor's scheme lives in its adapter),
records the event id once, and saves the embedded deal through ``deals_save``, which ignores a
deal older than the stored one. Nothing unverified reaches the store.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.connections.models import Connection
from dealdesk.providers import adapter_for
from dealdesk.providers.base import ReferenceData, WebhookRefused, supports_webhooks
from dealdesk.sync.models import WebhookEvent, WebhookSubscription
from dealdesk.sync.store import deals_save, reference_load

logger = logging.getLogger("dealdesk.sync")

MAX_WEBHOOK_BYTES = 1024 * 1024  # a deal event is a few kB; more is refused unread
EVENT_MEMORY = dt.timedelta(days=3)  # event ids kept for deduplication (retries end sooner)
# With a working webhook the poll interval is multiplied by this: polling only catches what a
# lost delivery missed, so it never stops.
WEBHOOK_POLL_FACTOR = 6


@dataclass(frozen=True)
class WebhookOutcome:
    status: int
    detail: str


def webhook_apply(
    connection: Connection, headers: Mapping[str, str], body: bytes
) -> WebhookOutcome:
    """Verify and apply one delivery; the outcome's status is what the receiver answers."""
    subscription = WebhookSubscription.objects.filter(connection=connection).first()
    if subscription is None or not subscription.active:
        return WebhookOutcome(404, "no webhook is set up for this connection")
    try:
        secret = subscription.get_secret()
        adapter = adapter_for(connection.info())
    except UndecryptableSecret:
        return _refused(
            subscription, WebhookRefused("the stored secret cannot be decrypted", status=503)
        )
    if not supports_webhooks(adapter):
        return WebhookOutcome(404, "this provider sends no webhooks")
    try:
        adapter.verify_webhook(headers, body, secret)  # type: ignore[attr-defined]
        ref = reference_load(connection) or ReferenceData()
        event = adapter.parse_webhook_event(body, ref=ref)  # type: ignore[attr-defined]
    except WebhookRefused as refusal:
        return _refused(subscription, refusal)
    now = timezone.now()
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                connection=connection,
                event_id=event.id[:100],
                event_type=event.type[:60],
                received_at=now,
            )
            applied = deals_save(connection, [event.deal]) if event.deal is not None else 0
    except IntegrityError:
        detail = "duplicate event, already applied"
        applied = 0
    else:
        detail = "applied" if applied else "nothing newer to apply"
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        last_delivery_at=now, deliveries=F("deliveries") + 1
    )
    return WebhookOutcome(200, detail)


def _refused(subscription: WebhookSubscription, refusal: WebhookRefused) -> WebhookOutcome:
    logger.warning("webhook for %s refused: %s", subscription.connection.slug, refusal.reason)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(
        refused=F("refused") + 1, last_refusal=refusal.reason[:200]
    )
    return WebhookOutcome(refusal.status, refusal.reason)


def webhook_events_prune(now: dt.datetime | None = None) -> int:
    limit = (now or timezone.now()) - EVENT_MEMORY
    return WebhookEvent.objects.filter(received_at__lt=limit).delete()[0]


# --- Registering -------------------------------------------------------------------------------


class WebhookSetupError(Exception):
    """Registering is not possible (no public URL, a provider without webhooks)."""


def webhook_public_url(connection: Connection, base_url: str | None = None) -> str:
    base = (base_url or settings.DEALDESK_PUBLIC_URL).rstrip("/")
    if not base:
        raise WebhookSetupError("Set DEALDESK_PUBLIC_URL to the address the vendor can reach.")
    return base + reverse("sync:webhook", args=[connection.provider, connection.slug])


def webhook_register(connection: Connection, *, base_url: str | None = None) -> WebhookSubscription:
    """Register this connection's receiver upstream and keep the secret it answers with.
    Raises ``WebhookSetupError`` or a ``ProviderError``."""
    url = webhook_public_url(connection, base_url)
    adapter = adapter_for(connection.info())
    if not supports_webhooks(adapter):
        raise WebhookSetupError(f"{connection.label} sends no webhooks; polling keeps it fresh.")
    endpoint = adapter.register_webhook(url)  # type: ignore[attr-defined]
    subscription, _ = WebhookSubscription.objects.get_or_create(connection=connection)
    subscription.endpoint_id = endpoint.id
    subscription.url = endpoint.url or url
    subscription.state = endpoint.state
    subscription.registered_at = timezone.now()
    if endpoint.secret:
        subscription.set_secret(endpoint.secret)
    subscription.save()
    return subscription


def webhook_secret_set(connection: Connection, secret: str) -> WebhookSubscription:
    """Use a secret made in the vendor's own console (the endpoint was created there)."""
    subscription, _ = WebhookSubscription.objects.get_or_create(connection=connection)
    subscription.set_secret(secret.strip())
    subscription.state = subscription.state or "set by hand"
    subscription.save()
    return subscription


def webhook_state_refresh(subscription: WebhookSubscription) -> WebhookSubscription:
    """Ask the vendor how the endpoint stands now (raises a ``ProviderError``)."""
    if not subscription.endpoint_id:
        return subscription
    adapter = adapter_for(subscription.connection.info())
    endpoint = adapter.webhook_endpoint(subscription.endpoint_id)  # type: ignore[attr-defined]
    subscription.state = endpoint.state
    subscription.save(update_fields=["state"])
    return subscription


def webhook_is_on(connection: Connection) -> bool:
    """A secret is set and the vendor has not disabled the endpoint: polling can slow down."""
    return (
        WebhookSubscription.objects.filter(connection=connection)
        .exclude(secret_encrypted="")
        .exclude(state="disabled")
        .exists()
    )


def webhooks_register_demo(base_url: str) -> list[str]:
    """``make run`` on the built-in sandbox: register this server's own receiver for every demo
    connection whose provider sends webhooks, so the demo is live out of the box. Returns the
    labels registered."""
    from dealdesk.connections.models import Origin

    registered = []
    for connection in Connection.objects.filter(enabled=True, origin=Origin.SANDBOX):
        try:
            webhook_register(connection, base_url=base_url)
        except WebhookSetupError:
            continue  # a provider without webhooks: polling keeps it fresh
        except Exception:  # the demo still runs, on polling alone
            logger.warning("webhook of %s not registered", connection.slug, exc_info=True)
            continue
        registered.append(connection.label)
    return registered
