"""Saved views: a user's named filters and sort, beside the list, stored per user, shareable."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dealdesk.deals.models import SavedView
from dealdesk.deals.roles import SALES_GROUP
from dealdesk.deals.services import DealFilters
from dealdesk.listtools.saved_views import saved_view_delete, saved_view_list, saved_view_save
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_saving_keeps_only_the_list_filters_and_replaces_a_view_of_the_same_name(sales_user):
    saved_view_save(user=sales_user, name="  Open  stora ", filters=DealFilters(source="stora"))
    view = saved_view_save(
        user=sales_user, name="Open stora", filters=DealFilters(source="stora", status="open")
    )
    assert SavedView.objects.count() == 1
    assert (view.name, view.querystring) == ("Open stora", "status=open&source=stora")


def test_views_are_per_user():
    alice, bob = make_user("alice", SALES_GROUP), make_user("bob", SALES_GROUP)
    saved_view_save(user=alice, name="Mine", filters=DealFilters(stale=True))
    assert [v.name for v in saved_view_list(user=alice)] == ["Mine"]
    assert saved_view_list(user=bob) == []
    assert not saved_view_delete(user=bob, view_id=SavedView.objects.get().pk)
    assert SavedView.objects.count() == 1


def test_a_view_needs_a_name(sales_user):
    with pytest.raises(ValueError):
        saved_view_save(user=sales_user, name="   ", filters=DealFilters())


def test_save_over_htmx_answers_with_the_aside_listing_the_shareable_link(sales_client):
    response = sales_client.post(
        reverse("saved_views:save"),
        {"name": "Stale nodestash", "source": "nodestash", "stale": "1", "sort": "name"},
        **HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="saved-views"')
    assert '<a href="/deals/?source=nodestash&amp;sort=name&amp;stale=1"' in html
    assert "Saved “Stale nodestash”." in html


def test_save_without_javascript_redirects_to_the_saved_view(sales_client):
    response = sales_client.post(reverse("saved_views:save"), {"name": "Won", "status": "won"})
    assert response.status_code == 302
    assert response["Location"] == "/deals/?status=won"


def test_an_empty_name_comes_back_with_an_error(sales_client):
    response = sales_client.post(reverse("saved_views:save"), {"name": " "}, **HTMX)
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.content.decode()


def test_the_list_shows_the_users_views_and_deleting_one_removes_it(sales_client, sales_user):
    view = saved_view_save(user=sales_user, name="Lost deals", filters=DealFilters(status="lost"))
    html = sales_client.get(reverse("deals:list")).content.decode()
    assert "Saved views" in html and ">Lost deals</a>" in html

    response = sales_client.post(reverse("saved_views:delete", args=[view.pk]), **HTMX)
    assert "Lost deals" not in response.content.decode()
    assert not SavedView.objects.exists()


def test_viewers_may_keep_saved_views_too(viewer_client):
    response = viewer_client.post(reverse("saved_views:save"), {"name": "Mine"}, **HTMX)
    assert response.status_code == 200


def test_filter_changes_over_htmx_refresh_the_aside_so_save_takes_the_current_filters(
    sales_client,
):
    html = sales_client.get(reverse("deals:list"), {"status": "open"}, **HTMX).content.decode()
    aside = html[html.index('<section id="saved-views"') :]
    assert 'hx-swap-oob="true"' in aside[:120]
    assert '<input type="hidden" name="status" value="open">' in aside
