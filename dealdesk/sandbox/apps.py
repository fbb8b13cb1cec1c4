from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """Installed for ``manage.py sandbox``; the demo that uses it is ``dealdesk.demo``."""

    name = "dealdesk.sandbox"
    verbose_name = "Sandbox"
