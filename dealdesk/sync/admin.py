"""Sync health in the admin: one row per connection, with "Resync now"."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.providers import adapter_for
from dealdesk.providers.base import DailyQuota
from dealdesk.sync.health import sync_health, synced_ago
from dealdesk.sync.models import SyncState
from dealdesk.sync.webhook_admin import register_webhook


@admin.register(SyncState)
class SyncStateAdmin(admin.ModelAdmin):
    list_display = (
        "connection",
        "state_with_progress",
        "last_success",
        "lag",
        "deals_stored",
        "quota_today",
        "last_error_words",
    )
    list_select_related = ("connection",)
    actions = ["resync_now", "full_resync", register_webhook]
    fields = (
        "connection",
        "state_with_progress",
        "last_success",
        "lag",
        "deals_stored",
        "quota_today",
        "freshness",
        "last_error_words",
        "last_walk_at",
        "reference_synced_at",
        "paused_until",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one row per connection, made by the sync itself

    def has_delete_permission(self, request: HttpRequest, obj: SyncState | None = None) -> bool:
        return False

    @admin.display(description="State")
    def state_with_progress(self, state: SyncState) -> str:
        if state.backfill_done:
            label = "Failing" if sync_health(state.connection, state).error else "In sync"
            return label
        total = state.backfill_total
        if total:
            return format_html(
                'Backfilling: {} of {} deals <progress max="{}" value="{}">{}</progress>',
                f"{state.backfill_count:,}",
                f"{total:,}",
                total,
                min(state.backfill_count, total),
                f"{state.backfill_count}/{total}",
            )
        return format_html(
            "Backfilling: {} deals so far <progress></progress>", f"{state.backfill_count:,}"
        )

    @admin.display(description="Last success")
    def last_success(self, state: SyncState) -> str:
        return synced_ago(state.last_success_at)

    @admin.display(description="Lag")
    def lag(self, state: SyncState) -> str:
        health = sync_health(state.connection, state)
        if health.lag_seconds is None:
            return "—"
        return f"{int(health.lag_seconds)} s"

    @admin.display(description="Quota used today")
    def quota_today(self, state: SyncState) -> str:
        words = f"{state.calls_today:,} sync calls"
        quota = _daily_quota(state)
        if quota is not None:
            words += f"; the vendor reports {quota.remaining:,} of {quota.limit:,} left today"
        return words

    @admin.display(description="How fresh")
    def freshness(self, state: SyncState) -> str:
        share = settings.DEALDESK_SYNC_SHARE
        quota = _daily_quota(state)
        active = settings.DEALDESK_SYNC_ACTIVE_INTERVAL
        if quota is None:
            return (
                f"Polled every {active} s while someone uses DealDesk, every "
                f"{settings.DEALDESK_SYNC_IDLE_INTERVAL} s otherwise, within "
                f"{int(share * 100)} % of the vendor's rate limits."
            )
        per_day = quota.limit * share
        spaced = max(active, int(86400 / per_day)) if per_day else 0
        return (
            f"{int(share * 100)} % of the daily quota ({int(per_day):,} calls) is for the sync: "
            f"about one poll every {spaced} s over the day, faster in bursts while people "
            "work."
        )

    @admin.display(description="Last error")
    def last_error_words(self, state: SyncState) -> str:
        health = sync_health(state.connection, state)
        return health.error or "—"

    @admin.action(description="Resync now")
    def resync_now(self, request: HttpRequest, queryset: QuerySet[SyncState]) -> None:
        from dealdesk.sync.tasks import sync_kick

        for state in queryset:
            state.paused_until = None
            state.save(update_fields=["paused_until"])
            sync_kick(state.connection)
        self.message_user(request, f"Queued a sync of {queryset.count()} connection(s).")

    @admin.action(description="Full resync (re-read every deal)")
    def full_resync(self, request: HttpRequest, queryset: QuerySet[SyncState]) -> None:
        from dealdesk.sync.tasks import sync_kick

        for state in queryset:
            state.walk_requested = True
            state.paused_until = None
            state.save(update_fields=["walk_requested", "paused_until"])
            sync_kick(state.connection)
        self.message_user(
            request,
            f"Queued a full resync of {queryset.count()} connection(s).",
            level=messages.SUCCESS,
        )


def _daily_quota(state: SyncState) -> DailyQuota | None:
    try:
        return adapter_for(state.connection.info()).daily_quota()
    except UndecryptableSecret:
        return None
