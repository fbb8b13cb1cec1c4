"""``Sandbox`` controls for the synced store's tests (issues 11, 15, 16): nodestash plans and
quota, deleting deals, and Stora webhooks. Mixed into ``Sandbox``; every method takes the
simulator's lock for the moment it changes state, and none waits on the network under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dealdesk.sandbox.webhooks import WebhookSender

WEBHOOK_PROVIDER = "stora"  # nodestash's webhooks are "coming soon" (nodestash.md §18)


class SyncControls:
    """Needs ``self.simulators`` and ``self.locks`` (``Sandbox`` has both)."""

    simulators: dict[str, Any]
    locks: dict[str, Any]

    # --- nodestash plans and quota (nodestash.md §11) ------------------------------------------

    def set_plan(self, provider: str, plan: str) -> None:
        """Switch nodestash to ``sandbox`` (the default), ``free``, ``starter``, ``pro`` or
        ``scale``: its daily quota and burst change at once; what was spent today stays spent."""
        simulator = self._planned(provider)
        with self.locks[provider]:
            simulator.set_plan(plan)

    def set_daily_remaining(self, provider: str, remaining: int) -> None:
        """Leave ``remaining`` requests of today's quota; with rate limiting on, the one after
        the last is a daily 429 with ``Retry-After`` until midnight UTC."""
        simulator = self._planned(provider)
        with self.locks[provider]:
            simulator.set_daily_remaining(int(remaining))

    def quota(self, provider: str) -> dict[str, Any]:
        """``{"plan", "daily_limit", "daily_remaining", "burst_limit"}``."""
        simulator = self._planned(provider)
        with self.locks[provider]:
            return simulator.quota()

    def _planned(self, provider: str) -> Any:
        simulator = self.simulators.get(provider)
        if simulator is None or not hasattr(simulator, "set_plan"):
            raise ValueError(f"{provider!r} has no plans; only nodestash does")
        return simulator

    # --- deals gone upstream ----------------------------------------------------------------

    def delete_deal(self, provider: str, deal_id: str) -> None:
        """Remove a deal for good (KeyError if there is none): for Stora as if deleted in
        Backoffice, for nodestash as ``DELETE /deals/{id}``. No webhook is sent."""
        with self.locks[provider]:
            self.simulators[provider].delete_deal(deal_id)

    # --- Stora webhooks (stora.md §15) --------------------------------------------------------

    @property
    def webhook_sender(self) -> WebhookSender:
        return self.simulators[WEBHOOK_PROVIDER].webhooks

    def register_webhook(
        self,
        url: str,
        *,
        secret: str | None = None,
        event_types: Iterable[str] = ("deal.updated", "deal.lost"),
    ) -> dict[str, Any]:
        """Register a Stora webhook endpoint without the API (any url, e.g. a test receiver);
        returns the endpoint, with ``secret`` (generated unless given)."""
        with self.locks[WEBHOOK_PROVIDER]:
            return self.simulators[WEBHOOK_PROVIDER].register_webhook(
                url, secret=secret, event_types=list(event_types)
            )

    def webhook_endpoints(self) -> list[dict[str, Any]]:
        """Every registered endpoint, secrets included."""
        with self.locks[WEBHOOK_PROVIDER]:
            return [dict(e) for e in self.simulators[WEBHOOK_PROVIDER].webhook_endpoints.values()]

    def remove_webhooks(self) -> None:
        with self.locks[WEBHOOK_PROVIDER]:
            self.simulators[WEBHOOK_PROVIDER].webhook_endpoints.clear()

    def webhook_fault(self, kind: str, count: int = 1, *, seconds: float = 0.0) -> None:
        """Apply ``kind`` (``drop``, ``delay``, ``duplicate``, ``bad_signature``, ``bad_body``,
        ``malformed_json``, ``stale_timestamp``) to the next ``count`` deliveries."""
        self.webhook_sender.add_fault(kind, count, seconds=seconds)

    def set_webhook_retry_scale(self, scale: float) -> None:
        """Multiply the retry delays (0.2 s, 1 s, 5 s, 15 s, 30 s, 60 s); 0 retries at once."""
        if not scale >= 0:
            raise ValueError("scale must be 0 or more")
        self.webhook_sender.retry_scale = float(scale)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every attempt (and dropped delivery) so far, oldest first."""
        return self.webhook_sender.deliveries()

    def wait_for_webhooks(
        self, attempts: int | None = None, *, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait for ``attempts`` entries in the delivery list (or, without it, until nothing is
        queued or in flight, retries included); returns the list either way."""
        return self.webhook_sender.wait(attempts=attempts, timeout=timeout)

    def clear_webhook_deliveries(self) -> None:
        self.webhook_sender.clear_deliveries()
