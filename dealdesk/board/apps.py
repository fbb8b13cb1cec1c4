from django.apps import AppConfig


class BoardConfig(AppConfig):
    name = "dealdesk.board"
    verbose_name = "Board"
