from django.urls import path

from dealdesk.deals import views

app_name = "deals"

urlpatterns = [
    path("", views.deal_list_view, name="list"),
]
