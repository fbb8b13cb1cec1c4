from django.urls import path

from dealdesk.deals import list_views, views

app_name = "deals"

deal = "<slug:connection_slug>/<str:deal_id>/"
field = deal + "fields/<slug:field_name>/"

urlpatterns = [
    path("", views.deal_list_view, name="list"),
    path("bulk/", list_views.bulk_view, name="bulk"),  # before the deal patterns below
    path(deal, views.deal_detail_view, name="detail"),
    path(field + "edit/", views.field_edit_view, name="field_edit"),
    path(field, views.field_display_view, name="field_display"),
    path(field + "save/", views.field_save_view, name="field_save"),
    path(deal + "state/", views.state_view, name="state"),
    path(deal + "stage/", views.change_stage_view, name="change_stage"),
    path(deal + "won/", views.mark_won_view, name="mark_won"),
    path(deal + "lost/form/", views.lose_form_view, name="lose_form"),
    path(deal + "lost/", views.mark_lost_view, name="mark_lost"),
    path(deal + "reopen/form/", views.reopen_form_view, name="reopen_form"),
    path(deal + "reopen/", views.reopen_view, name="reopen"),
]
