from django.apps import AppConfig, apps
from django.core import checks
from django.db.models.signals import post_migrate


class DemoConfig(AppConfig):
    name = "dealdesk.demo"
    verbose_name = "Demo"

    def ready(self) -> None:
        from dealdesk.demo.setup import demo_login_check, demo_retire_after_migrate

        # This app has no models, so Django sends it no post_migrate: listen to the app whose
        # table the clean-up touches.
        post_migrate.connect(
            demo_retire_after_migrate,
            sender=apps.get_app_config("connections"),
            dispatch_uid="dealdesk.demo.demo_retire_after_migrate",
        )
        checks.register(demo_login_check, checks.Tags.security, deploy=True)
