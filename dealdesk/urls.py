from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="deals:list", permanent=False)),
    path(
        "accounts/login/",
        login_not_required(auth_views.LoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("deals/", include("dealdesk.deals.urls")),
    path("deals/", include("dealdesk.timeline.urls")),  # a deal's notes and tasks
    path("board/", include("dealdesk.board.urls")),
    path("views/", include("dealdesk.listtools.urls")),
    path("", include("dealdesk.sync.urls")),  # vendor webhooks and the live-changes feed
]

handler404 = "dealdesk.deals.errors.page_not_found"
