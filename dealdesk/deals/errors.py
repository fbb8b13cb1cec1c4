"""Error responses shared by every view: a 404 that htmx can act on.

htmx swaps no 404 (static/js/dealdesk.js), so a partial request for a deal that was deleted
upstream would leave the user looking at a stale form with no word of what happened. Such a
request gets ``HX-Refresh`` instead: the page reloads and the full 404 page says the deal is gone.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.defaults import page_not_found as django_page_not_found


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if getattr(request, "htmx", False):
        response = HttpResponse(status=404)
        response["HX-Refresh"] = "true"
        return response
    return django_page_not_found(request, exception)
