"""Who each DealDesk user is in each source, for the list's "My deals" filter."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dealdesk.connections.models import Connection


class OwnerLink(models.Model):
    """A user is this staff member (or owner) in this connection: deals whose owner id is
    ``owner_id`` there are the user's own. An admin sets it on the user's admin page."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owner_links"
    )
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    owner_id = models.CharField("owner", max_length=100)
    owner_name = models.CharField(max_length=300, blank=True, help_text="For reading only.")

    class Meta:
        ordering = ["connection__label", "owner_name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "connection"], name="unique_owner_link")
        ]
        verbose_name = "deal owner in a source"
        verbose_name_plural = "deal owner in each source"

    def __str__(self) -> str:
        return f"{self.user} is {self.owner_name or self.owner_id} in {self.connection.label}"
