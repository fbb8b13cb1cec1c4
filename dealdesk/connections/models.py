from __future__ import annotations

from django.db import models

from dealdesk.connections.crypto import decrypt_secret, encrypt_secret, secret_hint
from dealdesk.providers.base import ConnectionInfo
from dealdesk.providers.registry import PROVIDERS

# One choice per registered adapter (providers/registry.py), e.g. ``Provider("stora")``.
Provider = models.TextChoices(  # type: ignore[call-overload]  # stubs lack the functional API
    "Provider", [(name.upper(), (name, spec.label)) for name, spec in PROVIDERS.items()]
)


class Origin(models.TextChoices):
    ADMIN = "admin", "Django admin"
    ENVIRONMENT = "environment", "Environment"
    SANDBOX = "sandbox", "Built-in sandbox"


class Connection(models.Model):
    """One account of one provider. The API key is only ever stored encrypted."""

    provider = models.CharField(max_length=20, choices=Provider.choices)
    label = models.CharField(max_length=60, help_text="Shown as the deal's Source.")
    slug = models.SlugField(max_length=40, unique=True, help_text="Used in deal URLs.")
    base_url = models.URLField(max_length=300, help_text="The API's base URL.")
    api_key_encrypted = models.TextField(editable=False)
    api_key_hint = models.CharField(max_length=12, editable=False)
    enabled = models.BooleanField(default=True)
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.ADMIN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_provider_display()})"

    def set_api_key(self, plain: str) -> None:
        self.api_key_encrypted = encrypt_secret(plain)
        self.api_key_hint = secret_hint(plain)

    def get_api_key(self) -> str:
        """Raises ``UndecryptableSecret`` when stored under another encryption key."""
        return decrypt_secret(self.api_key_encrypted)

    def info(self) -> ConnectionInfo:
        return ConnectionInfo(
            slug=self.slug,
            label=self.label,
            provider=self.provider,
            base_url=self.base_url.rstrip("/"),
            api_key=self.get_api_key(),
        )
