"""What the page frame (base.html) needs to know about the signed-in user."""

from __future__ import annotations

from django import template
from django.contrib import admin

register = template.Library()


@register.simple_tag(takes_context=True)
def admin_usable(context: template.Context) -> bool:
    """True when the admin would show this user at least one page: staff without any admin
    permission would only meet "You don't have permission", so they get no Admin link."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not (user.is_active and user.is_staff):
        return False
    return bool(admin.site.get_app_list(request))
