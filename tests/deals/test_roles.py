"""Who may edit deals: Sales (through the group's permission), anyone given the permission
directly, and superusers; never a Viewer, an inactive user or someone signed out. Read in one
query, because every list, board and deal page asks."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dealdesk.deals.roles import SALES_GROUP, VIEWERS_GROUP, can_edit_deals
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    """The user as a new request loads them (no permission cache on the object)."""
    return User.objects.get(pk=user.pk)


def test_sales_may_edit_and_viewers_may_not():
    assert can_edit_deals(fresh(make_user("sam", SALES_GROUP)))
    assert not can_edit_deals(fresh(make_user("vic", VIEWERS_GROUP)))


def test_a_permission_given_to_the_user_directly_counts():
    user = User.objects.create_user("direct", password="x")
    assert not can_edit_deals(fresh(user))
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="deals", codename="edit_deals")
    )
    assert can_edit_deals(fresh(user))


def test_a_superuser_may_edit_without_a_group():
    assert can_edit_deals(fresh(User.objects.create_superuser("root", password="x")))


def test_inactive_and_signed_out_users_may_not_edit():
    inactive = make_user("gone", SALES_GROUP, is_active=False)
    assert not can_edit_deals(fresh(inactive))
    assert not can_edit_deals(AnonymousUser())


def test_a_permission_of_the_same_codename_in_another_app_does_not_count():
    user = make_user("other", VIEWERS_GROUP)
    elsewhere = Permission.objects.exclude(content_type__app_label="deals").first()
    assert elsewhere is not None
    elsewhere_copy = Permission.objects.create(
        name="Edit deals elsewhere", content_type=elsewhere.content_type, codename="edit_deals"
    )
    user.user_permissions.add(elsewhere_copy)
    assert not can_edit_deals(fresh(user))


def test_the_right_is_read_in_one_query():
    user = fresh(make_user("quick", SALES_GROUP))
    with CaptureQueriesContext(connection) as queries:
        assert can_edit_deals(user)
    assert len(queries.captured_queries) == 1


def test_only_the_model_backend_grants_permissions():
    """``can_edit_deals`` answers with the model backend's rules in one query: a backend added
    later that grants permissions itself (SSO, LDAP) must be asked too, so it fails here first."""
    from django.conf import settings
    from django.contrib.auth import load_backend
    from django.contrib.auth.backends import ModelBackend

    granting = [
        path
        for path in settings.AUTHENTICATION_BACKENDS
        if not isinstance(load_backend(path), ModelBackend)
        and any(
            hasattr(load_backend(path), name)
            for name in ("has_perm", "get_all_permissions", "get_group_permissions")
        )
    ]
    assert granting == []
