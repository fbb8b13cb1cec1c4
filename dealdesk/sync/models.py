"""The synced deal store: a local copy of every connection's deals and reference data.

Every read view is served from these tables; only the sync engine (``engine.py``) and the write
services fill them, always from the adapters' dataclasses (``store.py``), never from vendor JSON.
"""

from __future__ import annotations

from django.db import models

from dealdesk.connections.models import Connection


class SyncedDeal(models.Model):
    """One deal as last seen upstream. The indexed columns serve lists, filters, sorts, totals
    and the board; ``payload`` holds the whole ``Deal`` for the detail page."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="deals")
    upstream_id = models.CharField(max_length=100)
    name = models.CharField(max_length=500, blank=True)
    name_sort = models.CharField(max_length=200, blank=True, db_index=True)  # casefolded
    status = models.CharField(max_length=40)  # indexed by sync_deal_list, with its connection
    stage_id = models.CharField(max_length=100, blank=True, db_index=True)
    stage_name = models.CharField(max_length=300, blank=True)
    pipeline_id = models.CharField(max_length=100, blank=True, db_index=True)
    value_amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, db_index=True)
    value_currency = models.CharField(max_length=8, blank=True)
    value_text = models.CharField(max_length=500, blank=True)
    owner_id = models.CharField(max_length=100, blank=True, db_index=True)
    owner_name = models.CharField(max_length=300, blank=True)
    contact_id = models.CharField(max_length=100, blank=True)
    contact_name = models.CharField(max_length=300, blank=True)
    company_id = models.CharField(max_length=100, blank=True)  # a company, or a Stora site
    company_name = models.CharField(max_length=300, blank=True)
    tags = models.JSONField(default=list)
    search_text = models.TextField(blank=True)  # casefolded name, contact, company/site, tags
    expected_close_date = models.DateField(null=True, db_index=True)
    upstream_created_at = models.DateTimeField(null=True)
    upstream_updated_at = models.DateTimeField(null=True, db_index=True)
    synced_at = models.DateTimeField()
    walk_seen_at = models.DateTimeField(null=True)  # the full walk that last saw it
    deleted = models.BooleanField(default=False)
    payload = models.JSONField(default=dict)  # the ``Deal`` dataclass (store.deal_to_payload)
    raw = models.JSONField(default=dict)  # the vendor's JSON, as the adapter kept it

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "upstream_id"], name="sync_deal_unique_per_connection"
            )
        ]
        indexes = [
            models.Index(fields=["deleted", "-upstream_updated_at"], name="sync_deal_recent"),
            # The board: every column's count and totals from the index alone.
            models.Index(
                fields=[
                    "connection",
                    "pipeline_id",
                    "deleted",
                    "status",
                    "stage_id",
                    "upstream_updated_at",
                    "value_currency",
                    "value_amount",
                ],
                name="sync_deal_pipeline",
            ),
            # Covers what a list reads over every matching deal (count, totals, the sort that
            # picks a page's ids) so it scans this index, not 10,000s of wide rows.
            models.Index(
                fields=[
                    "connection",
                    "deleted",
                    "status",
                    "upstream_updated_at",
                    "name_sort",
                    "value_amount",
                    "value_currency",
                    "value_text",
                    "stage_id",
                ],
                name="sync_deal_list",
            ),
            # Search is a substring match (``LIKE '%…%'``) that no B-tree can seek, but it can
            # scan this narrow index instead of every wide row (JSON and all) for the count,
            # totals and page ids of a search.
            models.Index(
                fields=[
                    "connection",
                    "deleted",
                    "search_text",
                    "status",
                    "upstream_updated_at",
                    "name_sort",
                    "value_amount",
                    "value_currency",
                    "value_text",
                    "stage_id",
                ],
                name="sync_deal_search",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.upstream_id})"


class ReferenceItem(models.Model):
    """One slow-changing lookup of a connection: a pipeline, a stage, a staff member, or a
    named object deals point at (contact, company, site…)."""

    class Kind(models.TextChoices):
        PIPELINE = "pipeline"
        STAGE = "stage"
        STAFF = "staff"
        NAME = "name"
        VERSION = "version"  # one per save: a new value means new reference data
        CONTACT = "contact"  # details: email, phone, company_id
        PLACE = "place"  # a company or a site; details: kind, address, website
        CATALOGUE = "catalogue"  # a line item's target; stage_type: its type, details: detail
        LINK = "link"  # a vendor link template (name -> href)

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="reference_items"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    upstream_id = models.CharField(max_length=100)
    name = models.CharField(max_length=500, blank=True)
    position = models.IntegerField(null=True)
    stage_type = models.CharField(max_length=20, blank=True)
    pipeline_id = models.CharField(max_length=100, blank=True)
    order = models.IntegerField(default=0)  # the adapter's order within its kind
    details = models.JSONField(default=dict, blank=True)  # what a kind keeps beyond a name

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "kind", "upstream_id"], name="sync_reference_unique"
            )
        ]
        indexes = [models.Index(fields=["connection", "kind"], name="sync_reference_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.upstream_id}"


class SyncState(models.Model):
    """Where one connection's sync stands: progress, health, quota spent, and its lock."""

    class State(models.TextChoices):
        NEVER = "never", "Not synced yet"
        BACKFILLING = "backfilling", "Backfilling"
        IN_SYNC = "in_sync", "In sync"
        FAILING = "failing", "Failing"

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, related_name="sync_state"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.NEVER)
    # Which account the stored deals came from (base URL and key, hashed): another account
    # starts the store of this connection afresh.
    account_fingerprint = models.CharField(max_length=32, blank=True)
    # The first backfill, resumable: the adapter's cursor and how many deals so far.
    backfill_cursor = models.CharField(max_length=500, blank=True)
    backfill_done = models.BooleanField(default=False)
    backfill_count = models.IntegerField(default=0)
    backfill_total = models.IntegerField(null=True)  # when the vendor reports a count
    backfill_started_at = models.DateTimeField(null=True)
    # Incremental polling stops at the high-water mark (the newest updated_at seen).
    high_water = models.DateTimeField(null=True)
    # A full walk, resumable like the backfill.
    walk_cursor = models.CharField(max_length=500, blank=True)
    walk_started_at = models.DateTimeField(null=True)
    last_walk_at = models.DateTimeField(null=True)
    walk_requested = models.BooleanField(default=False)
    reference_synced_at = models.DateTimeField(null=True)
    reference_calls = models.IntegerField(default=0)  # what the last reference refresh cost
    last_success_at = models.DateTimeField(null=True)
    last_attempt_at = models.DateTimeField(null=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_kind = models.CharField(max_length=40, blank=True)
    last_error_at = models.DateTimeField(null=True)
    paused_until = models.DateTimeField(null=True)  # after a vendor 429, until its reset
    # Upstream calls the sync made today (UTC day).
    calls_day = models.DateField(null=True)
    calls_today = models.IntegerField(default=0)
    deals_stored = models.IntegerField(default=0)
    # The lease: at most one sync per connection runs, whichever worker holds it.
    lock_owner = models.CharField(max_length=64, blank=True)
    lock_expires_at = models.DateTimeField(null=True)
    # The current chain of scheduled polls (an older chain's task sees a different token).
    chain_token = models.CharField(max_length=64, blank=True)
    next_run_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"Sync of {self.connection}"


class TeamActivity(models.Model):
    """When anyone last used DealDesk (one row): the sync polls often while this is recent."""

    last_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Team last active at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"


class DealChange(models.Model):
    """One stored deal whose content changed: the id is the change counter open pages follow
    (``/live/changes/?since=<id>``). Old rows are pruned (``tasks.live_prune``)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    upstream_id = models.CharField(max_length=100)
    changed_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"change {self.pk} of {self.upstream_id}"


class StoreVersion(models.Model):
    """One row whose token changes whenever a stored deal's content does (a save that changed
    it, a deletion, a full walk dropping deals). Reads cache what they computed over the whole
    store (a list's count and totals, a page's ids, a board's columns) under this token, so a
    cached figure is never older than the store (``store.store_version``)."""

    token = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"store version {self.token}"


class WebhookSubscription(models.Model):
    """A connection's webhook endpoint upstream and its signing secret (encrypted like an API
    key). Without a secret the receiver refuses every delivery."""

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, related_name="webhook_subscription"
    )
    endpoint_id = models.CharField(max_length=100, blank=True)
    url = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=40, blank=True)  # as the vendor last reported it
    secret_encrypted = models.TextField(blank=True, editable=False)
    secret_hint = models.CharField(max_length=12, blank=True, editable=False)
    registered_at = models.DateTimeField(null=True)
    last_delivery_at = models.DateTimeField(null=True)
    deliveries = models.IntegerField(default=0)
    refused = models.IntegerField(default=0)
    last_refusal = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"Webhook of {self.connection}"

    @property
    def active(self) -> bool:
        return bool(self.secret_encrypted)

    def set_secret(self, plain: str) -> None:
        from dealdesk.connections.crypto import encrypt_secret, secret_hint

        self.secret_encrypted = encrypt_secret(plain)
        self.secret_hint = secret_hint(plain)

    def get_secret(self) -> str:
        from dealdesk.connections.crypto import decrypt_secret

        return decrypt_secret(self.secret_encrypted)


class WebhookEvent(models.Model):
    """A webhook event already applied: a second delivery of the same id is acknowledged and
    ignored. Pruned after a few days (Stora's retries end within hours)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=60, blank=True)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "event_id"], name="sync_webhook_event_once"
            )
        ]

    def __str__(self) -> str:
        return self.event_id
