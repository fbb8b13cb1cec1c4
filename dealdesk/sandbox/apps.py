from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "dealdesk.sandbox"
    verbose_name = "Sandbox"
