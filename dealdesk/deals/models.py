from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One write attempted through DealDesk, whatever its outcome. Deals themselves are never
    stored: this is the only deal-related data DealDesk keeps."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Saved"
        FAILED = "failed", "Failed"
        CONFLICT = "conflict", "Refused: changed upstream"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    connection_slug = models.SlugField(max_length=40)
    connection_label = models.CharField(max_length=60)
    deal_id = models.CharField(max_length=100)
    deal_name = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=30)
    changes = models.JSONField(default=list)  # [{"field", "label", "old", "new"}]
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    error_message = models.TextField(blank=True)
    request_id = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connection_slug", "deal_id", "-created_at"])]
        permissions = [("edit_deals", "Can edit deals in the upstream APIs")]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"

    def __str__(self) -> str:
        return f"{self.username} {self.action} {self.connection_slug}:{self.deal_id}"


class StageSetting(models.Model):
    """Per-stage settings an admin tunes: after how many days without an update an open deal in
    this stage counts as stale. Stages without a row use ``DEFAULT_STALE_AFTER_DAYS``."""

    DEFAULT_STALE_AFTER_DAYS = 14

    connection_slug = models.SlugField(max_length=40)
    stage_id = models.CharField(max_length=100)
    stage_name = models.CharField(max_length=200, blank=True, help_text="For reading only.")
    stale_after_days = models.PositiveIntegerField(
        default=DEFAULT_STALE_AFTER_DAYS,
        help_text="An open deal not updated for longer than this is marked stale.",
    )

    class Meta:
        ordering = ["connection_slug", "stage_name", "stage_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection_slug", "stage_id"], name="unique_stage_setting"
            )
        ]
        verbose_name = "stage setting"

    def __str__(self) -> str:
        return f"{self.connection_slug}: {self.stage_name or self.stage_id}"


class SavedView(models.Model):
    """A user's named list filters and sort; the list URL with ``querystring`` shows it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=80)
    querystring = models.CharField(max_length=600, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="unique_saved_view_name")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.name}"
