"""No dead ends: the designed 404 and 403 pages with DEBUG on too (Django's technical 404 only
behind DEALDESK_TECHNICAL_404), and an Admin link only for users the admin has a page for."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from dealdesk.deals.roles import SALES_GROUP
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/no/such/page/", "/deals/stora/not-a-deal-id/"])
def test_a_missing_page_shows_the_designed_404_with_debug_on(viewer_client, settings, path):
    settings.DEBUG = True

    response = viewer_client.get(path)

    assert response.status_code == 404
    assert "We couldn’t find that" in response.text
    assert "Using the URLconf" not in response.text


def test_djangos_technical_404_only_behind_its_setting(viewer_client, settings):
    settings.DEBUG = True
    settings.DEALDESK_TECHNICAL_404 = True

    response = viewer_client.get("/no/such/page/")

    assert response.status_code == 404
    assert "We couldn’t find that" not in response.text
    assert "DEBUG = True" in response.text


def test_a_refused_action_shows_the_designed_403(viewer_client, settings):
    settings.DEBUG = True

    response = viewer_client.post("/deals/bulk/", {"action": "mark_won"})

    assert response.status_code == 403
    assert "You can’t do that here" in response.text
    assert 'href="/deals/"' in response.text


def test_the_admin_link_is_only_for_staff_the_admin_has_a_page_for(client, connections):
    staff_without_rights = make_user("bare-staff", SALES_GROUP, is_staff=True)
    client.force_login(staff_without_rights)
    assert 'href="/admin/"' not in client.get("/deals/").text

    staff_without_rights.user_permissions.add(Permission.objects.get(codename="view_connection"))
    assert 'href="/admin/"' in client.get("/deals/").text
