from django.apps import AppConfig


class ListToolsConfig(AppConfig):
    name = "dealdesk.listtools"
    verbose_name = "List tools"
