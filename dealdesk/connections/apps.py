from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConnectionsConfig(AppConfig):
    name = "dealdesk.connections"
    verbose_name = "API connections"

    def ready(self) -> None:
        from dealdesk.connections.services import sync_environment_after_migrate

        post_migrate.connect(sync_environment_after_migrate, sender=self)
