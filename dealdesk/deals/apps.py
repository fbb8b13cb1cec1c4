from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DealsConfig(AppConfig):
    name = "dealdesk.deals"
    verbose_name = "Deals"

    def ready(self) -> None:
        from dealdesk.deals.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self)
