"""Webhooks in the admin: "Register webhook" per connection (on the sync rows), and each
connection's endpoint with its state, last delivery, refusals, and a field to paste a secret made
in the vendor's own console instead."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.providers.base import ProviderError
from dealdesk.sync.health import synced_ago
from dealdesk.sync.models import SyncState, WebhookSubscription
from dealdesk.sync.webhooks import (
    WebhookSetupError,
    webhook_public_url,
    webhook_register,
    webhook_state_refresh,
)


@admin.action(description="Register webhook (uses DEALDESK_PUBLIC_URL)")
def register_webhook(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[SyncState]
) -> None:
    for state in queryset.select_related("connection"):
        connection = state.connection
        try:
            subscription = webhook_register(connection)
        except (WebhookSetupError, ProviderError, UndecryptableSecret) as problem:
            modeladmin.message_user(
                request, f"{connection.label}: webhook not registered. {problem}", messages.ERROR
            )
            continue
        modeladmin.message_user(
            request,
            f"{connection.label}: webhook registered at {subscription.url} "
            f"({subscription.state}); its secret is stored encrypted.",
            messages.SUCCESS,
        )


class WebhookSubscriptionForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Paste the signing secret of an endpoint made in the vendor's own console "
        "(its back office). Leave empty to keep the stored one.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ("connection", "secret")

    def save(self, commit: bool = True) -> WebhookSubscription:
        subscription: WebhookSubscription = super().save(commit=False)
        if self.cleaned_data.get("secret"):
            subscription.set_secret(self.cleaned_data["secret"])
            subscription.state = subscription.state or "set by hand"
        if commit:
            subscription.save()
        return subscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = (
        "connection",
        "state",
        "url",
        "last_delivery",
        "deliveries",
        "refused",
        "last_refusal",
        "secret_hint",
    )
    list_select_related = ("connection",)
    readonly_fields = (
        "receiver_url",
        "endpoint_id",
        "url",
        "state",
        "secret_hint",
        "registered_at",
        "last_delivery",
        "deliveries",
        "refused",
        "last_refusal",
    )
    actions = ["refresh_state"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: WebhookSubscription | None = None
    ) -> tuple[str, ...]:
        return (("connection",) if obj else ()) + self.readonly_fields

    @admin.display(description="Last delivery received")
    def last_delivery(self, subscription: WebhookSubscription) -> str:
        return synced_ago(subscription.last_delivery_at) if subscription.last_delivery_at else "—"

    @admin.display(description="This connection's receiver")
    def receiver_url(self, subscription: WebhookSubscription) -> str:
        try:
            return webhook_public_url(subscription.connection)
        except WebhookSetupError as problem:
            return str(problem)

    @admin.action(description="Ask the vendor for the endpoint's state")
    def refresh_state(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        for subscription in queryset.select_related("connection"):
            try:
                webhook_state_refresh(subscription)
            except (ProviderError, UndecryptableSecret) as problem:
                self.message_user(
                    request, f"{subscription.connection.label}: {problem}", messages.ERROR
                )
        self.message_user(request, "Endpoint states refreshed.")
