from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import AppConfig

if TYPE_CHECKING:
    from dealdesk.connections.models import Connection


class SyncConfig(AppConfig):
    name = "dealdesk.sync"
    verbose_name = "Deal sync"

    def ready(self) -> None:
        # huey discovers tasks by importing each app's ``tasks`` module.
        from django.db.models.signals import post_save

        from dealdesk.connections.models import Connection
        from dealdesk.sync import tasks

        post_save.connect(_sync_new_or_changed_connection, sender=Connection)
        del tasks


def _sync_new_or_changed_connection(
    sender: type[Connection], instance: Connection, **kwargs: Any
) -> None:
    """A connection added or edited in the admin syncs at once (a new account starts afresh)."""
    from django.conf import settings

    if settings.DEALDESK_SYNC_AUTOSTART and instance.enabled and not kwargs.get("raw"):
        from dealdesk.sync.tasks import sync_kick

        sync_kick(instance)
