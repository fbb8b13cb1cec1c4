from django.urls import path

from dealdesk.sync import views

app_name = "sync"
urlpatterns = [
    path("webhooks/<slug:provider>/<slug:connection_slug>/", views.webhook_receive, name="webhook"),
    path("live/changes/", views.live_changes_view, name="live_changes"),
]
