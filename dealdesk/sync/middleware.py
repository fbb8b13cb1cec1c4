"""Marks the team as active on every signed-in page view, so the sync polls often while people
use DealDesk and rarely otherwise (``schedule.py``); and tells a page which store changes its own
write made (``live.py``), so its live check does not read them back."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from dealdesk.sync.live import OWN_CHANGES_HEADER, own_changes_collected, own_changes_header
from dealdesk.sync.schedule import activity_seen


class ActivityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        if settings.DEALDESK_SYNC_AUTOSTART and signed_in and activity_seen():
            from dealdesk.sync.tasks import sync_kick_all  # the queue, only when needed

            sync_kick_all()
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return self.get_response(request)
        with own_changes_collected() as collected:
            response = self.get_response(request)
        if header := own_changes_header(collected):
            response[OWN_CHANGES_HEADER] = header
        return response
