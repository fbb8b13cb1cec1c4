from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "dealdesk.connections"
    verbose_name = "API connections"
