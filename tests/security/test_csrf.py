"""CSRF is enforced on every write: a POST without the token is refused (403) on every URL that
takes one, and the same POST with the token (as htmx sends it, in X-CSRFToken) gets through."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from dealdesk.deals.services import DealFilters, deal_list
from tests.test_access import ENDPOINTS, PUBLIC_WEBHOOK_NAMES

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_client(connections, no_rate_limits, sales_user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_user)
    return client


def deal_writes() -> dict[str, tuple[str, dict]]:
    """Each deal write on a real deal, with data the view accepts."""
    open_deal = deal_list(filters=DealFilters(source="nodestash", status="open"), page_size=1)
    lost_deal = deal_list(filters=DealFilters(source="stora", status="lost"), page_size=1)
    deal, closed = open_deal.deals[0], lost_deal.deals[0]
    args, closed_args = ["nodestash", deal.id], ["stora", closed.id]
    stage = deal.pipeline.stages_of_type("open")[-1].id
    return {
        "field_save": (
            reverse("deals:field_save", args=[*args, "name"]),
            {"name": "Renamed", "original": deal.name, "idempotency_key": "k1"},
        ),
        "change_stage": (
            reverse("deals:change_stage", args=args),
            {"stage": stage, "idempotency_key": "k2"},
        ),
        "mark_won": (reverse("deals:mark_won", args=args), {"idempotency_key": "k3"}),
        "mark_lost": (
            reverse("deals:mark_lost", args=closed_args),
            {"reason": "price_concerns", "idempotency_key": "k4"},
        ),
        "reopen": (
            reverse("deals:reopen", args=closed_args),
            {"stage": "", "idempotency_key": "k5"},
        ),
    }


def test_every_post_without_the_token_is_refused(csrf_client):
    refused = []
    for endpoint in ENDPOINTS:
        response = csrf_client.post(endpoint.url, {"name": "x"})
        if endpoint.name in PUBLIC_WEBHOOK_NAMES:
            # A vendor cannot send our token: the signature check refuses it instead.
            assert 400 <= response.status_code < 500, (endpoint.name, response.status_code)
            continue
        assert response.status_code == 403, (endpoint.name, response.status_code)
        refused.append(endpoint.name)
    assert {"deals:field_save", "deals:mark_won", "logout", "login"} <= set(refused)


def test_each_deal_write_without_the_token_is_refused_and_sends_nothing(csrf_client, sandbox):
    sandbox.clear_log()
    for name, (url, data) in deal_writes().items():
        assert csrf_client.post(url, data).status_code == 403, name
    assert [r for r in sandbox.requests() if r.method != "GET"] == []


def test_each_deal_write_with_the_token_gets_through(csrf_client, sandbox):
    csrf_client.get(reverse("deals:list"))  # sets the csrftoken cookie, as the page load does
    token = csrf_client.cookies["csrftoken"].value
    for name, (url, data) in deal_writes().items():
        response = csrf_client.post(url, data, HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true")
        assert response.status_code != 403, name


def test_a_wrong_token_is_refused(csrf_client):
    csrf_client.get(reverse("deals:list"))
    url, data = deal_writes()["mark_won"]

    response = csrf_client.post(url, data, HTTP_X_CSRFTOKEN="not-the-token" * 3)

    assert response.status_code == 403
