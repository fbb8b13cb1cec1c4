"""Saved views: a user's named list filters and sort, stored per user.

Only the list's own filter keys are kept (``DealFilters.to_querystring``), so a saved view is a
plain, shareable list URL.
"""

from __future__ import annotations

from django.db import transaction

from dealdesk.deals.listing import DealFilters
from dealdesk.deals.models import SavedView

NAME_MAX_LENGTH = SavedView._meta.get_field("name").max_length


def saved_view_list(*, user) -> list[SavedView]:
    if not user.is_authenticated:
        return []
    return list(SavedView.objects.filter(user=user))


def saved_view_save(*, user, name: str, filters: DealFilters) -> SavedView:
    """Save under ``name``; saving again under the same name replaces that view's filters."""
    name = " ".join(name.split())[:NAME_MAX_LENGTH]
    if not name:
        raise ValueError("Give the view a name.")
    with transaction.atomic():
        view, _created = SavedView.objects.update_or_create(
            user=user, name=name, defaults={"querystring": filters.to_querystring()}
        )
    return view


def saved_view_delete(*, user, view_id: int) -> bool:
    deleted, _ = SavedView.objects.filter(user=user, pk=view_id).delete()
    return bool(deleted)
