"""A second login lockout, per client address across every username (password spraying).

django-axes locks a username + address pair after ``AXES_FAILURE_LIMIT`` failures. This backend,
first in ``AUTHENTICATION_BACKENDS``, refuses every login from an address that failed
``DEALDESK_ADDRESS_FAILURE_LIMIT`` times (any usernames) within axes' cool-off. It counts axes'
own failure log (``AXES_ENABLE_ACCESS_FAILURE_LOG``), and lets ``AxesMiddleware`` answer with the
same lockout page.
"""

from __future__ import annotations

from axes.helpers import get_client_ip_address, get_cool_off
from axes.models import AccessFailureLog
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone


def address_failures(request: HttpRequest) -> int:
    """Failed logins from the request's address within the cool-off, whatever the username."""
    address = get_client_ip_address(request)
    cool_off = get_cool_off(request)
    if not address or cool_off is None:
        return 0
    since = timezone.now() - cool_off
    return AccessFailureLog.objects.filter(ip_address=address, attempt_time__gte=since).count()


class AddressLockoutBackend:
    """Refuses, never grants: authentication itself is left to the backends after it. It has no
    ``get_user``, so it never holds a session (like axes' own backend)."""

    def authenticate(self, request: HttpRequest | None, username=None, password=None, **kwargs):
        if request is None or not settings.AXES_ENABLED:
            return None
        if address_failures(request) >= settings.DEALDESK_ADDRESS_FAILURE_LIMIT:
            request.axes_locked_out = True  # AxesMiddleware answers with the lockout page
            raise PermissionDenied("too many failed logins from this address")
        return None
