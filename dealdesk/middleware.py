"""Headers and session lifetime for signed-in pages (settings: SESSION_COOKIE_AGE and
DEALDESK_SESSION_IDLE_SECONDS)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

from dealdesk.deals.errors import page_not_found

SIGNED_IN_AT = "dealdesk_signed_in_at"
LAST_SEEN = "dealdesk_last_seen"
# Recording every request would write the session on each one; a minute is precise enough.
LAST_SEEN_RESOLUTION_SECONDS = 60
# Sent by an open page's own background reads (static/js/live.js): they are not the user's
# activity, so they never keep an idle session alive.
BACKGROUND_HEADER = "X-DealDesk-Live"


class SessionLifetimeMiddleware:
    """Signs a user out after ``DEALDESK_SESSION_IDLE_SECONDS`` without a request, and
    ``SESSION_COOKIE_AGE`` after signing in however busy they were (Django alone slides the
    cookie's expiry forward whenever the session is saved). Goes before ``LoginRequiredMiddleware``,
    which then sends them to the login page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            session = request.session
            signed_in_at = session.get(SIGNED_IN_AT)
            last_seen = session.get(LAST_SEEN, signed_in_at)
            if signed_in_at is None:
                session[SIGNED_IN_AT] = session[LAST_SEEN] = now
            elif (
                now - signed_in_at > settings.SESSION_COOKIE_AGE
                or now - last_seen > settings.DEALDESK_SESSION_IDLE_SECONDS
            ):
                logout(request)
            elif now - last_seen >= LAST_SEEN_RESOLUTION_SECONDS and not request.headers.get(
                BACKGROUND_HEADER
            ):
                session[LAST_SEEN] = now
        return self.get_response(request)


class PrivatePagesMiddleware:
    """``Cache-Control: private, no-store`` on every response to a signed-in user, so no shared
    cache or back button keeps deal data; ``Vary: HX-Request`` on every response, because one URL
    answers with a whole page or an htmx fragment."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        if request.user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response


class DesignedNotFoundMiddleware:
    """The designed 404 page with DEBUG on too (a developer sees what users see); Django's
    technical 404, which lists the URL patterns, only with ``DEALDESK_TECHNICAL_404``. Goes last,
    so it sees the 404 Django made for an unmatched URL or a view's ``Http404``. With DEBUG off
    Django already uses ``handler404``."""

    # Django's technical 404 page says why it is shown; nothing of ours says this.
    TECHNICAL_MARK = b"DEBUG = True"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and settings.DEBUG
            and not settings.DEALDESK_TECHNICAL_404
            and not getattr(response, "streaming", False)
            and self.TECHNICAL_MARK in response.content
        ):
            return page_not_found(request, Http404())
        return response
