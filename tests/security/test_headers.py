"""Response headers in production-like settings: HTTPS only, HSTS, no framing, a CSP without
unsafe-inline scripts, and cookies that are Secure and (for the session) HttpOnly."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_like(settings):
    """What DEBUG=false gives when no variable relaxes it (see dealdesk/settings.py)."""
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    return settings


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_plain_http_is_redirected_to_https(production_like):
    response = Client().get("/accounts/login/")

    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_a_page_carries_the_security_headers(production_like):
    response = Client().get("/accounts/login/", secure=True)

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    csp = csp_directives(response["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


def test_cookies_are_secure_and_the_session_cookie_is_http_only(production_like):
    User.objects.create_user("sam", password="a-long-password-1")
    client = Client()
    client.get("/accounts/login/", secure=True)
    assert client.cookies["csrftoken"]["secure"]

    response = client.post(
        "/accounts/login/",
        {"username": "sam", "password": "a-long-password-1"},
        secure=True,
    )

    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"


def test_a_logged_in_deal_page_carries_the_csp_too(production_like, client, connections):
    client.force_login(User.objects.create_user("viewer", password="x"))

    response = client.get("/deals/", secure=True)

    assert response.status_code == 200
    assert "'unsafe-inline'" not in csp_directives(response["Content-Security-Policy"]).get(
        "script-src", []
    )
    assert response["X-Frame-Options"] == "DENY"
