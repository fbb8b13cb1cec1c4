"""Saved views belong to the user, not to a deal: any signed-in user may keep them."""

from django.urls import path

from dealdesk.listtools import views as list_views

app_name = "saved_views"

urlpatterns = [
    path("save/", list_views.saved_view_save_view, name="save"),
    path("<int:view_id>/delete/", list_views.saved_view_delete_view, name="delete"),
]
