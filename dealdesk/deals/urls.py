from django.urls import path

from dealdesk.deals import field_views, list_views, state_views, views

app_name = "deals"

deal = "<slug:connection_slug>/<str:deal_id>/"
field = deal + "fields/<slug:field_name>/"

urlpatterns = [
    path("", views.deal_list_view, name="list"),
    path("bulk/", list_views.bulk_view, name="bulk"),  # before the deal patterns below
    path("nav/", views.deal_nav_step_view, name="nav_step"),
    path(deal, views.deal_detail_view, name="detail"),
    path(deal + "refresh/", views.deal_refresh_view, name="refresh"),
    path(field + "edit/", field_views.field_edit_view, name="field_edit"),
    path(field, field_views.field_display_view, name="field_display"),
    path(field + "save/", field_views.field_save_view, name="field_save"),
    path(deal + "state/", state_views.state_view, name="state"),
    path(deal + "stage/", state_views.change_stage_view, name="change_stage"),
    path(deal + "won/", state_views.mark_won_view, name="mark_won"),
    path(deal + "lost/form/", state_views.lose_form_view, name="lose_form"),
    path(deal + "lost/", state_views.mark_lost_view, name="mark_lost"),
    path(deal + "reopen/form/", state_views.reopen_form_view, name="reopen_form"),
    path(deal + "reopen/", state_views.reopen_view, name="reopen"),
]
