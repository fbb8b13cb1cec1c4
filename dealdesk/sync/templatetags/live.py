"""``{% live_attrs %}`` on ``<body>``: where ``static/js/live.js`` asks for changes, and the store's
change counter when the page was rendered (so nothing that changes after it is missed)."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html

from dealdesk.sync.live import live_token

register = template.Library()


@register.simple_tag
def live_attrs() -> str:
    return format_html(
        ' data-live-url="{}" data-live-since="{}"', reverse("sync:live_changes"), live_token()
    )
