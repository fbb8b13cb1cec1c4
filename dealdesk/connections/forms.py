"""The admin form for an API connection. The API key is write-only: never rendered back."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.connections.models import Connection
from dealdesk.providers.registry import PROVIDERS

KEEP_KEY_HELP = (
    "Stored key: {hint} — leave blank to keep it (enter it again when the base URL moves to "
    "another scheme, host or port)"
)
NEW_KEY_HELP = "Stored encrypted; it is never shown again."
KEY_FOR_NEW_ORIGIN = (
    "Enter the API key again: the base URL now points at another scheme, host or port, and the "
    "stored key is only ever sent to the address it was entered for."
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def example_base_url() -> str:
    """The first registered provider's public API, as configured (settings.py)."""
    spec = next(iter(PROVIDERS.values()))
    return str(getattr(settings, spec.url_setting, ""))


def url_origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of ``url``: where a bearer token sent to it would end up."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


class ConnectionAdminForm(forms.ModelForm):
    base_url = forms.URLField(
        label="Base URL",
        max_length=300,
        assume_scheme="https",
        help_text="The API's base URL, e.g. " + example_base_url(),
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

    def clean(self) -> dict:
        cleaned = super().clean()
        base_url = cleaned.get("base_url")
        if (
            self.instance.pk is not None
            and base_url
            and not cleaned.get("api_key")
            and url_origin(base_url) != url_origin(self.instance.base_url)
        ):
            # Keeping the stored key here would let whoever edits the URL send it anywhere.
            self.add_error("api_key", forms.ValidationError(KEY_FOR_NEW_ORIGIN, code="key_again"))
        return cleaned

    def save(self, commit: bool = True) -> Connection:
        api_key = self.cleaned_data.get("api_key")
        if api_key:
            self.instance.set_api_key(api_key)
        return super().save(commit=commit)
