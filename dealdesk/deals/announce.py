"""What the page's one polite live region (``#live-status`` in base.html) says after an action.

The server words it, next to the action it describes, and sends it in an ``HX-Trigger`` header;
``static/js/focus.js`` writes it into the region. A full-page answer (no htmx) carries none: the
new page is read anyway.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django_htmx.http import trigger_client_event

EVENT = "dealdesk:announce"


def announce(request: HttpRequest, response: HttpResponse, text: str) -> HttpResponse:
    if getattr(request, "htmx", False) and text:
        trigger_client_event(response, EVENT, {"text": text})
    return response


def deals_found(count: int, start: int = 0, end: int = 0, page: int = 1) -> str:
    found = f"{count:,} deal{'s' if count != 1 else ''} found"
    if page > 1 and count:
        return f"{found}, showing {start:,}–{end:,}"
    return found
