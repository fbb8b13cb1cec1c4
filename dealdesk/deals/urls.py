from django.urls import path

from dealdesk.deals.views import create, detail, fields, states
from dealdesk.deals.views import list as deal_list
from dealdesk.listtools import views as list_tools

app_name = "deals"

deal = "<slug:connection_slug>/<str:deal_id>/"
field = deal + "fields/<slug:field_name>/"

urlpatterns = [
    path("", deal_list.deal_list_view, name="list"),
    path("bulk/", list_tools.bulk_view, name="bulk"),  # before the deal patterns below
    path("nav/", list_tools.deal_nav_step_view, name="nav_step"),
    path("new/", create.deal_new_view, name="new"),
    path("new/lookup/", create.lookup_view, name="new_lookup"),
    path(deal, detail.deal_detail_view, name="detail"),
    path(deal + "refresh/", detail.deal_refresh_view, name="refresh"),
    path(field + "edit/", fields.field_edit_view, name="field_edit"),
    path(field, fields.field_display_view, name="field_display"),
    path(field + "save/", fields.field_save_view, name="field_save"),
    path(deal + "state/", states.state_view, name="state"),
    path(deal + "stage/", states.change_stage_view, name="change_stage"),
    path(deal + "won/", states.mark_won_view, name="mark_won"),
    path(deal + "lost/form/", states.lose_form_view, name="lose_form"),
    path(deal + "lost/", states.mark_lost_view, name="mark_lost"),
    path(deal + "reopen/form/", states.reopen_form_view, name="reopen_form"),
    path(deal + "reopen/", states.reopen_view, name="reopen"),
]
