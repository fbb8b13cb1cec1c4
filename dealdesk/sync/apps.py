from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "dealdesk.sync"
    verbose_name = "Deal sync"

    def ready(self) -> None:
        # huey discovers tasks by importing each app's ``tasks`` module.
        from dealdesk.sync import tasks  # noqa: F401
