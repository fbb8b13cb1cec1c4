from django.urls import path

from dealdesk.timeline import views

app_name = "timeline"

deal = "<slug:connection_slug>/<str:deal_id>/timeline/"

urlpatterns = [
    path(deal + "note/", views.add_note_view, name="add_note"),
    path(deal + "task/", views.add_task_view, name="add_task"),
    path(deal + "<str:activity_id>/done/", views.complete_view, name="complete"),
]
