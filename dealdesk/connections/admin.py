from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.connections.forms import ConnectionAdminForm
from dealdesk.connections.models import Connection, Origin
from dealdesk.connections.services import (
    connection_assumptions,
    connection_sync_environment,
    connection_test,
)

READ_ONLY_FIELDS = (
    "provider",
    "label",
    "slug",
    "base_url",
    "key_hint",
    "enabled",
    "origin",
    "vendor_assumptions",
)


def _from_environment(connection: Connection | None) -> bool:
    return connection is not None and connection.origin == Origin.ENVIRONMENT


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionAdminForm
    list_display = ("label", "provider", "slug", "base_url", "key_hint", "enabled", "origin")
    list_filter = ("provider", "enabled", "origin")
    search_fields = ("label", "slug", "base_url")
    readonly_fields = ("key_hint", "origin", "vendor_assumptions")
    actions = ["test_connection"]

    @admin.display(description="API key")
    def key_hint(self, connection: Connection) -> str:
        return connection.api_key_hint

    @admin.display(description="Vendor assumptions")
    def vendor_assumptions(self, connection: Connection) -> str:
        """Which guesses about the vendor's API held for this connection (README: Troubleshooting:
        vendor assumptions)."""
        lines = connection_assumptions(connection=connection)
        return format_html(
            '<ul class="vendor-assumptions">{}</ul>',
            format_html_join("", "<li>{}</li>", ((line,) for line in lines)),
        )

    def get_fields(self, request: HttpRequest, obj: Connection | None = None):
        if obj is None:
            return ("provider", "label", "slug", "base_url", "api_key", "enabled")
        if _from_environment(obj):
            # View-only: the key hint is all anyone sees; the key itself lives in the environment.
            return READ_ONLY_FIELDS
        return (
            "provider",
            "label",
            "slug",
            "base_url",
            "key_hint",
            "api_key",
            "enabled",
            "origin",
            "vendor_assumptions",
        )

    def has_change_permission(self, request: HttpRequest, obj: Connection | None = None) -> bool:
        if _from_environment(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Connection | None = None) -> bool:
        if _from_environment(obj):
            return False
        return super().has_delete_permission(request, obj)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # Keys set in the environment since the last migrate appear here without a restart.
        connection_sync_environment()
        return super().changelist_view(request, extra_context)

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        connection = self.get_object(request, object_id)
        if request.method == "GET" and connection is not None:
            if _from_environment(connection):
                self.message_user(
                    request,
                    "This connection comes from the environment: change its variables "
                    f"({connection.provider.upper()}_API_KEY, {connection.provider.upper()}"
                    "_API_URL) and restart DealDesk.",
                    level=messages.INFO,
                )
            else:
                try:
                    connection.get_api_key()
                except UndecryptableSecret as error:
                    self.message_user(
                        request, f"{connection.label}: {error.message}", level=messages.ERROR
                    )
        return super().change_view(request, object_id, form_url, extra_context)

    # It sends the stored key: only people who may change the connection may trigger that.
    @admin.action(description="Test connection", permissions=["change"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        for connection in queryset:
            result = connection_test(connection=connection)
            self.message_user(request, result.message, level=result.level)
