"""The two roles, as Django groups: Sales may edit deals, Viewers may only read them."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest

SALES_GROUP = "Sales"
VIEWERS_GROUP = "Viewers"
EDIT_PERMISSION = "deals.edit_deals"
EDIT_APP_LABEL, EDIT_CODENAME = EDIT_PERMISSION.split(".")


def ensure_roles(**_kwargs) -> None:
    """Create the groups with their permissions (runs after every ``migrate``)."""
    edit = Permission.objects.filter(content_type__app_label="deals", codename="edit_deals").first()
    sales, _ = Group.objects.get_or_create(name=SALES_GROUP)
    Group.objects.get_or_create(name=VIEWERS_GROUP)
    if edit is not None:
        sales.permissions.add(edit)


def can_edit_deals(user) -> bool:
    """What ``user.has_perm(EDIT_PERMISSION)`` answers with Django's model backend (the only one
    here that grants permissions), in one EXISTS query: every list, board and deal page asks,
    and ``has_perm`` loads all of the user's and their groups' permissions in two."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_dealdesk_can_edit", None)
    if cached is None:
        cached = Permission.objects.filter(
            Q(user=user) | Q(group__user=user),
            content_type__app_label=EDIT_APP_LABEL,
            codename=EDIT_CODENAME,
        ).exists()
        user._dealdesk_can_edit = cached
    return cached


def require_editor(request: HttpRequest) -> None:
    if not can_edit_deals(request.user):
        raise PermissionDenied("Only Sales can change deals.")
