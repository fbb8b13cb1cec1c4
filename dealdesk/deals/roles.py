"""The two roles, as Django groups: Sales may edit deals, Viewers may only read them."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

SALES_GROUP = "Sales"
VIEWERS_GROUP = "Viewers"
EDIT_PERMISSION = "deals.edit_deals"


def ensure_roles(**_kwargs) -> None:
    """Create the groups with their permissions (runs after every ``migrate``)."""
    edit = Permission.objects.filter(content_type__app_label="deals", codename="edit_deals").first()
    sales, _ = Group.objects.get_or_create(name=SALES_GROUP)
    Group.objects.get_or_create(name=VIEWERS_GROUP)
    if edit is not None:
        sales.permissions.add(edit)


def can_edit_deals(user) -> bool:
    return bool(user.is_authenticated and user.has_perm(EDIT_PERMISSION))


def require_editor(request: HttpRequest) -> None:
    if not can_edit_deals(request.user):
        raise PermissionDenied("Only Sales can change deals.")
