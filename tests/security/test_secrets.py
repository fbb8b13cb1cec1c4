"""No API key and no encryption key ever reaches a page or a log line.

Every page a user or an admin can open is rendered — the deal list and detail, the error pages,
and each admin page for connections (changelist, add, change, the test-connection result,
history) — with a distinctive key stored on a connection, and the HTML and the log lines of the
run are searched for every secret. ``tests/conftest.py`` checks the log lines of the whole run.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.urls import reverse

from dealdesk.connections.models import Connection
from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.sandbox import DEFAULT_STORA_TOKEN
from dealdesk.sync.engine import sync_run
from tests.conftest import EXTRA_SECRETS, make_connection, secrets_in

pytestmark = pytest.mark.django_db

DISTINCTIVE_KEY = "dd-test-distinctive-key-9f3Kq7Zx2Lw8"


@pytest.fixture
def distinctive_connection(connections, sandbox_server):
    """A third connection holding a key found nowhere else (the sandbox rejects it: 401)."""
    EXTRA_SECRETS["the distinctive connection key"] = DISTINCTIVE_KEY
    return make_connection(
        slug="stora-extra",
        label="Stora extra",
        provider="stora",
        base_url=sandbox_server.stora_url,
        api_key=DISTINCTIVE_KEY,
    )


@pytest.fixture
def admin_client(client, connections, no_rate_limits):
    admin = User.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin)
    return client


def assert_no_secret(label: str, html: str) -> None:
    leaks = secrets_in(html)
    assert not leaks, f"{label} shows {leaks}"


def test_no_page_shows_a_key(admin_client, sandbox, distinctive_connection, caplog):
    caplog.set_level(logging.DEBUG)
    deal = deal_list(filters=DealFilters(source="stora"), page_size=1).deals[0]
    connection = distinctive_connection
    changelist = reverse("admin:connections_connection_changelist")
    pages = {
        "the deal list": reverse("deals:list"),
        "the deal detail": reverse("deals:detail", args=["stora", deal.id]),
        "an edit form": reverse("deals:detail", args=["stora", deal.id]) + "?edit=name",
        "a deal of the rejected key": reverse("deals:detail", args=["stora-extra", deal.id]),
        "a 404": "/deals/stora/deal_does_not_exist/",
        "the admin index": reverse("admin:index"),
        "the connections changelist": changelist,
        "the add form": reverse("admin:connections_connection_add"),
        "the change form": reverse("admin:connections_connection_change", args=[connection.pk]),
        "the history": reverse("admin:connections_connection_history", args=[connection.pk]),
    }
    for label, url in pages.items():
        response = admin_client.get(url)
        assert response.status_code in (200, 404, 502), (label, response.status_code)
        assert_no_secret(label, response.content.decode())

    sandbox.set_outage("stora", True)
    outage = admin_client.get(reverse("deals:detail", args=["stora", deal.id]))
    assert outage.status_code == 200  # served from the store
    assert_no_secret("the deal page during an outage", outage.content.decode())
    refreshed = admin_client.post(reverse("deals:refresh", args=["stora", deal.id]), follow=True)
    assert refreshed.status_code == 200
    assert "cannot be reached" in refreshed.content.decode()
    assert_no_secret("the Refresh error", refreshed.content.decode())
    assert sync_run(Connection.objects.get(slug="stora")).error
    for label, url in (
        ("the list's sync alert", reverse("deals:list")),
        ("the deal page's sync alert", reverse("deals:detail", args=["stora", deal.id])),
    ):
        page = admin_client.get(url).content.decode()
        assert "cannot be reached" in page, label
        assert_no_secret(label, page)
    sandbox.set_outage("stora", False)

    tested = admin_client.post(
        changelist,
        {
            "action": "test_connection",
            "_selected_action": [c.pk for c in type(connection).objects.all()],
        },
        follow=True,
    )
    html = tested.content.decode()
    assert "Stora extra (stora-extra): key rejected" in html
    assert "Stora (stora): OK" in html
    assert_no_secret("the test-connection result", html)

    changed = admin_client.post(
        reverse("admin:connections_connection_change", args=[connection.pk]),
        {
            "provider": "stora",
            "label": "Stora extra",
            "slug": "stora-extra",
            "base_url": connection.base_url,
            "api_key": "",  # blank keeps the stored key
            "enabled": "on",
        },
        follow=True,
    )
    assert changed.status_code == 200
    assert_no_secret("the page after saving a connection", changed.content.decode())
    history = admin_client.get(
        reverse("admin:connections_connection_history", args=[connection.pk])
    )
    assert_no_secret("the history after a change", history.content.decode())

    assert_no_secret("the 500 page", render_to_string("500.html"))
    for record in caplog.records:
        assert_no_secret(f"log line {record.name}", caplog.handler.format(record))


def test_the_change_form_shows_only_the_masked_hint(admin_client, distinctive_connection):
    html = admin_client.get(
        reverse("admin:connections_connection_change", args=[distinctive_connection.pk])
    ).content.decode()

    assert "••••" + DISTINCTIVE_KEY[-4:] in html
    assert DISTINCTIVE_KEY not in html


def test_the_sandbox_request_log_never_shows_the_authorization_header(sandbox_server, sandbox):
    import requests

    requests.get(
        f"{sandbox_server.stora_url}/2025-09/deals",
        headers={"Authorization": f"Bearer {DEFAULT_STORA_TOKEN}"},
        timeout=5,
    )
    log = requests.get(f"{sandbox_server.url}/__sandbox/requests", timeout=5).text

    assert DEFAULT_STORA_TOKEN not in log


def test_log_lines_so_far_hold_no_secret(captured_log_lines):
    """The run's own log lines (the whole run is checked again when the session ends)."""
    assert captured_log_lines is not None
    leaks = {name for line in captured_log_lines for name in secrets_in(line)}
    assert not leaks, leaks
