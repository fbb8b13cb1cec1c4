"""HTTP for the store's freshness: the vendors' webhook receiver and the open pages' change feed."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from dealdesk.connections.models import Connection
from dealdesk.sync.live import live_changes
from dealdesk.sync.webhooks import MAX_WEBHOOK_BYTES, webhook_apply


@csrf_exempt  # the vendor cannot send our CSRF token; the signature authenticates it instead
@login_not_required
@require_POST
def webhook_receive(request: HttpRequest, provider: str, connection_slug: str) -> HttpResponse:
    """One delivery: 2xx once applied (or already applied), 4xx and nothing stored otherwise."""
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_WEBHOOK_BYTES:
        return _answer(413, "body too large")
    body = request.read(MAX_WEBHOOK_BYTES + 1)  # never more than the limit, whatever it said
    if len(body) > MAX_WEBHOOK_BYTES:
        return _answer(413, "body too large")
    connection = get_object_or_404(
        Connection, provider=provider, slug=connection_slug, enabled=True
    )
    outcome = webhook_apply(connection, request.headers, body)
    return _answer(outcome.status, outcome.detail)


def _answer(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


@never_cache
@require_GET
def live_changes_view(request: HttpRequest) -> JsonResponse:
    """``?since=<token>``: which stored deals changed since; no upstream call, a few queries."""
    try:
        since = max(0, int(request.GET.get("since", "0")))
    except ValueError:
        since = 0
    return JsonResponse(live_changes(since))
