from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from dealdesk.deals.models import AuditEntry, StageSetting


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail is a record: staff may read it, nobody edits or deletes it here."""

    list_display = ("created_at", "username", "connection_label", "deal_name", "action", "outcome")
    list_filter = ("outcome", "action", "connection_label", "created_at")
    search_fields = ("username", "deal_name", "deal_id", "request_id")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False


@admin.register(StageSetting)
class StageSettingAdmin(admin.ModelAdmin):
    """When an open deal counts as stale, per stage; stages without a row use 14 days."""

    list_display = ("connection_slug", "stage_name", "stage_id", "stale_after_days")
    list_editable = ("stale_after_days",)
    list_filter = ("connection_slug",)
    search_fields = ("stage_name", "stage_id")
