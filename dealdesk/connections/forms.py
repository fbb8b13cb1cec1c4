"""The admin form for an API connection. The API key is write-only: never rendered back."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.connections.models import Connection

KEEP_KEY_HELP = "Stored key: {hint} — leave blank to keep it"
NEW_KEY_HELP = "Stored encrypted; it is never shown again."


class ConnectionAdminForm(forms.ModelForm):
    base_url = forms.URLField(
        label="Base URL",
        max_length=300,
        assume_scheme="https",
        help_text="The API's base URL, e.g. https://public-api.stora.co",
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = Connection
        fields = ["provider", "label", "slug", "base_url", "api_key", "enabled"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stored_key_undecryptable = False
        field = self.fields["api_key"]
        if self.instance.pk is None:
            field.required = True
            field.error_messages["required"] = "Enter the API key."
            field.help_text = NEW_KEY_HELP
            return
        try:
            self.instance.get_api_key()
        except UndecryptableSecret as error:
            # The key was encrypted under another DEALDESK_ENCRYPTION_KEY: only a new key helps.
            self.stored_key_undecryptable = True
            field.required = True
            field.error_messages["required"] = error.message
            field.help_text = error.message
            return
        field.help_text = KEEP_KEY_HELP.format(hint=self.instance.api_key_hint)

    def clean_base_url(self) -> str:
        base_url = self.cleaned_data["base_url"].strip()
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise forms.ValidationError(
                "Enter an http:// or https:// URL with a host name.", code="invalid_base_url"
            )
        return base_url.rstrip("/")

    def save(self, commit: bool = True) -> Connection:
        api_key = self.cleaned_data.get("api_key")
        if api_key:
            self.instance.set_api_key(api_key)
        return super().save(commit=commit)
