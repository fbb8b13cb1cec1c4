"""The connections admin over Django's test client; "Test connection" over real HTTP."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission, User
from django.core.cache import cache

from dealdesk.connections.forms import KEY_FOR_NEW_ORIGIN
from dealdesk.connections.models import Connection, Origin
from dealdesk.connections.services import connection_sync_environment

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/connections/connection/"
ADD = "/admin/connections/connection/add/"
SECRET = "sk_live_very_secret_1a2b"


def change_url(connection: Connection) -> str:
    return f"/admin/connections/connection/{connection.pk}/change/"


@pytest.fixture(autouse=True)
def no_environment_keys(settings):
    settings.STORA_API_KEY = ""
    settings.NODESTASH_API_KEY = ""
    connection_sync_environment()
    cache.clear()  # the client-side rate budget lives in the cache
    yield settings
    cache.clear()


def make_connection(
    *, slug="stora-eu", provider="stora", base_url="https://public-api.stora.co", key=SECRET
) -> Connection:
    connection = Connection(provider=provider, label=slug.title(), slug=slug, base_url=base_url)
    connection.set_api_key(key)
    connection.save()
    return connection


def form_data(**overrides) -> dict:
    data = {
        "provider": "stora",
        "label": "Stora EU",
        "slug": "stora-eu",
        "base_url": "https://public-api.stora.co",
        "api_key": SECRET,
        "enabled": "on",
    }
    data.update(overrides)
    return data


def field_errors(response, name: str) -> list[str]:
    return list(response.context["adminform"].form.errors.get(name, []))


# --- Adding and changing ----------------------------------------------------------------------


def test_added_connection_stores_the_key_encrypted(admin_client):
    response = admin_client.post(ADD, form_data())
    assert response.status_code == 302
    connection = Connection.objects.get(slug="stora-eu")
    assert SECRET not in connection.api_key_encrypted
    assert connection.get_api_key() == SECRET
    assert connection.api_key_hint == "••••1a2b"
    assert connection.origin == Origin.ADMIN


def test_change_page_and_changelist_show_only_the_masked_hint(admin_client):
    connection = make_connection()
    change_page = admin_client.get(change_url(connection)).content.decode()
    changelist = admin_client.get(CHANGELIST).content.decode()
    for html in (change_page, changelist):
        assert SECRET not in html
        assert connection.api_key_encrypted not in html
        assert "••••1a2b" in html
    assert "Stored key: ••••1a2b — leave blank to keep it" in change_page
    assert 'type="password"' in change_page


def test_blank_key_on_change_keeps_the_stored_key(admin_client):
    connection = make_connection()
    response = admin_client.post(change_url(connection), form_data(label="Renamed", api_key=""))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.label == "Renamed"
    assert connection.get_api_key() == SECRET


def test_new_key_on_change_replaces_the_stored_key(admin_client):
    connection = make_connection()
    admin_client.post(change_url(connection), form_data(api_key="sk_live_replacement_9z9z"))
    connection.refresh_from_db()
    assert connection.get_api_key() == "sk_live_replacement_9z9z"
    assert connection.api_key_hint == "••••9z9z"


def test_empty_key_is_refused_when_adding(admin_client):
    response = admin_client.post(ADD, form_data(api_key="   "))
    assert response.status_code == 200
    assert field_errors(response, "api_key") == ["Enter the API key."]
    assert not Connection.objects.exists()


@pytest.mark.parametrize("base_url", ["ftp://files.example.com", "https://", "not a url at all"])
def test_invalid_base_url_is_refused_with_a_field_error(admin_client, base_url):
    response = admin_client.post(ADD, form_data(base_url=base_url))
    assert response.status_code == 200
    assert field_errors(response, "base_url")
    assert not Connection.objects.exists()


def test_missing_label_and_taken_slug_are_refused(admin_client):
    make_connection(slug="stora-eu")
    response = admin_client.post(ADD, form_data(label="", slug="stora-eu"))
    assert response.status_code == 200
    assert field_errors(response, "label")
    assert field_errors(response, "slug")


def test_a_typed_key_is_not_sent_back_when_the_form_has_errors(admin_client):
    response = admin_client.post(ADD, form_data(base_url="ftp://x"))
    assert SECRET not in response.content.decode()


# --- Connections from the environment --------------------------------------------------------


@pytest.fixture
def environment_connection(no_environment_keys) -> Connection:
    no_environment_keys.STORA_API_KEY = "stora-env-secret-7e7e"
    connection_sync_environment()
    return Connection.objects.get(slug="stora")


def test_environment_connection_is_listed_as_coming_from_the_environment(
    admin_client, environment_connection
):
    html = admin_client.get(CHANGELIST).content.decode()
    assert "Environment" in html
    assert "••••7e7e" in html
    assert "stora-env-secret-7e7e" not in html


def test_environment_connection_page_is_view_only_and_hides_the_key(
    admin_client, environment_connection
):
    response = admin_client.get(change_url(environment_connection))
    html = response.content.decode()
    assert response.status_code == 200
    assert "stora-env-secret-7e7e" not in html
    assert environment_connection.api_key_encrypted not in html
    assert 'name="api_key"' not in html
    assert 'name="_save"' not in html
    assert "comes from the environment" in html


def test_environment_connection_cannot_be_changed_or_deleted(admin_client, environment_connection):
    changed = admin_client.post(
        change_url(environment_connection), form_data(slug="stora", api_key="sk_hijack_0000")
    )
    deleted = admin_client.post(
        f"/admin/connections/connection/{environment_connection.pk}/delete/", {"post": "yes"}
    )
    assert changed.status_code == 403
    assert deleted.status_code == 403
    environment_connection.refresh_from_db()
    assert environment_connection.get_api_key() == "stora-env-secret-7e7e"


def test_environment_connection_survives_the_bulk_delete_action(
    admin_client, environment_connection
):
    admin_client.post(
        CHANGELIST,
        {
            "action": "delete_selected",
            "_selected_action": [environment_connection.pk],
            "post": "yes",
        },
    )
    assert Connection.objects.filter(pk=environment_connection.pk).exists()


# --- A key stored under another encryption key -----------------------------------------------


@pytest.fixture
def undecryptable_connection(settings) -> Connection:
    connection = make_connection()
    settings.DEALDESK_ENCRYPTION_KEY = Fernet.generate_key().decode()
    return connection


def test_undecryptable_key_is_reported_on_the_change_page_not_as_a_500(
    admin_client, undecryptable_connection
):
    response = admin_client.get(change_url(undecryptable_connection))
    assert response.status_code == 200
    assert "cannot decrypt the stored key; enter it again" in response.content.decode()


def test_undecryptable_key_requires_a_new_key_on_save(admin_client, undecryptable_connection):
    refused = admin_client.post(change_url(undecryptable_connection), form_data(api_key=""))
    assert refused.status_code == 200
    assert field_errors(refused, "api_key") == ["cannot decrypt the stored key; enter it again"]
    saved = admin_client.post(
        change_url(undecryptable_connection), form_data(api_key="sk_new_4d4d")
    )
    assert saved.status_code == 302
    undecryptable_connection.refresh_from_db()
    assert undecryptable_connection.get_api_key() == "sk_new_4d4d"


def test_changelist_still_works_with_an_undecryptable_key(admin_client, undecryptable_connection):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert "••••1a2b" in response.content.decode()


# --- Test connection ---------------------------------------------------------------------------


class FakeApi:
    """A tiny local HTTP server standing in for a provider: answers every request with
    ``status`` (and ``headers``), so these tests need no simulator."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self.requests: list[tuple[str, str, str]] = []  # method, path, Authorization
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append((self.command, self.path, self.headers.get("Authorization")))
                body = json.dumps(api.body_for(self.path)).encode()
                self.send_response(api.status)
                for name, value in {"Content-Type": "application/json", **api.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def body_for(self, path: str) -> dict:
        meta = {"request_id": "req_fake", "pagination": {"next_cursor": None, "has_more": False}}
        if self.status == 401:
            return {"error": {"code": "INVALID_API_KEY", "message": "Invalid key"}, "meta": meta}
        if self.status == 429:
            return {"error": {"code": "RATE_LIMITED", "message": "Slow down"}, "meta": meta}
        # An empty list in both vendors' shapes: Stora names the resource, nodestash says "data".
        resource = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        return {resource: [], "data": [], "meta": meta}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api():
    api = FakeApi()
    yield api
    api.stop()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_test_connection(admin_client, *connections: Connection) -> str:
    response = admin_client.post(
        CHANGELIST,
        {"action": "test_connection", "_selected_action": [c.pk for c in connections]},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("provider", ["stora", "nodestash"])
def test_test_connection_reports_ok(admin_client, fake_api, provider):
    connection = make_connection(slug=f"{provider}-x", provider=provider, base_url=fake_api.url)
    html = run_test_connection(admin_client, connection)
    assert f"{connection.label} ({connection.slug}): OK" in html
    assert len(fake_api.requests) == 1
    assert fake_api.requests[0][0] == "GET"
    assert fake_api.requests[0][2] == f"Bearer {SECRET}"


@pytest.mark.parametrize("provider", ["stora", "nodestash"])
def test_test_connection_reports_a_rejected_key(admin_client, fake_api, provider):
    fake_api.status = 401
    connection = make_connection(slug=f"{provider}-x", provider=provider, base_url=fake_api.url)
    html = run_test_connection(admin_client, connection)
    assert f"{connection.label} ({connection.slug}): key rejected — update the API key" in html


def test_test_connection_reports_an_unreachable_base_url(admin_client):
    connection = make_connection(base_url=closed_port_url())
    html = run_test_connection(admin_client, connection)
    assert "Stora-Eu (stora-eu): unreachable — check the base URL" in html


def test_test_connection_reports_rate_limiting_with_the_wait(admin_client, fake_api):
    fake_api.status = 429
    fake_api.headers = {"Retry-After": "7"}
    connection = make_connection(slug="nodestash-x", provider="nodestash", base_url=fake_api.url)
    html = run_test_connection(admin_client, connection)
    assert "Nodestash-X (nodestash-x): rate limited — try again in 7 s" in html


def test_test_connection_reports_an_undecryptable_key(admin_client, undecryptable_connection):
    html = run_test_connection(admin_client, undecryptable_connection)
    assert "Stora-Eu (stora-eu): cannot decrypt the stored key; enter it again" in html


def test_test_connection_reports_each_selected_connection(admin_client, fake_api):
    working = make_connection(slug="working", base_url=fake_api.url)
    broken = make_connection(slug="broken", base_url=closed_port_url())
    html = run_test_connection(admin_client, working, broken)
    assert "Working (working): OK" in html
    assert "Broken (broken): unreachable — check the base URL" in html


def test_test_connection_against_the_sandbox(admin_client, sandbox_server, sandbox):
    from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN

    stora = make_connection(slug="stora-sandbox", base_url=sandbox_server.stora_url)
    stora.set_api_key(DEFAULT_STORA_TOKEN)
    stora.save()
    nodestash = make_connection(
        slug="nodestash-sandbox", provider="nodestash", base_url=sandbox_server.nodestash_url
    )
    nodestash.set_api_key(DEFAULT_NODESTASH_TOKEN)
    nodestash.save()
    wrong_key = make_connection(slug="wrong-key", base_url=sandbox_server.stora_url)
    html = run_test_connection(admin_client, stora, nodestash, wrong_key)
    assert "Stora-Sandbox (stora-sandbox): OK" in html
    assert "Nodestash-Sandbox (nodestash-sandbox): OK" in html
    assert "Wrong-Key (wrong-key): key rejected — update the API key" in html


# --- Vendor assumptions ------------------------------------------------------------------------


def test_change_page_lists_which_vendor_assumptions_held_and_which_fell_back(
    admin_client, sandbox_server, sandbox
):
    from dealdesk.providers import adapter_for
    from dealdesk.providers.base import DealQuery
    from dealdesk.sandbox import DEFAULT_STORA_TOKEN

    connection = make_connection(
        slug="stora", base_url=sandbox_server.stora_url, key=DEFAULT_STORA_TOKEN
    )
    sandbox.set_variants("stora", ["staff_404"])
    sandbox.set_rate_limiting("stora", False)
    adapter = adapter_for(connection.info())
    adapter.list_deals(DealQuery(), ref=adapter.reference_data(), cursor=None, limit=5)

    page = admin_client.get(change_url(connection)).content.decode()

    assert "Vendor assumptions" in page
    assert "S-A9 staff endpoint: fell back (404) — assignee names come from expand" in page
    assert "S-A1 deals list sort: held" in page
    assert "S-A3 expand: held" in page  # the list asked for expand=assignee instead
    assert "S-A2 deals list filters: not checked yet" in page


# --- The stored key only ever goes where it was entered for ------------------------------------


@pytest.fixture
def attacker_api():
    """A server of the person editing the connection, hoping to receive the stored key."""
    api = FakeApi()
    yield api
    api.stop()


def test_a_new_host_with_a_blank_key_is_refused_and_no_token_reaches_it(
    admin_client, fake_api, attacker_api
):
    connection = make_connection(base_url=fake_api.url)

    response = admin_client.post(
        change_url(connection), form_data(base_url=attacker_api.url, api_key="")
    )
    html = run_test_connection(admin_client, connection)

    assert response.status_code == 200
    assert field_errors(response, "api_key") == [KEY_FOR_NEW_ORIGIN]
    connection.refresh_from_db()
    assert connection.base_url == fake_api.url
    assert attacker_api.requests == []
    assert "Stora-Eu (stora-eu): OK" in html
    assert fake_api.requests[0][2] == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    "old, new",
    [
        ("https://public-api.stora.co", "https://evil.example.com"),
        ("https://public-api.stora.co", "http://public-api.stora.co"),
        ("https://public-api.stora.co", "https://public-api.stora.co:8443"),
        ("https://public-api.stora.co", "https://public-api.stora.co.evil.example"),
    ],
)
def test_changing_scheme_host_or_port_needs_the_key_again(admin_client, old, new):
    connection = make_connection(base_url=old)

    refused = admin_client.post(change_url(connection), form_data(base_url=new, api_key=""))
    accepted = admin_client.post(
        change_url(connection), form_data(base_url=new, api_key="sk_live_for_the_new_host_7c7c")
    )

    assert field_errors(refused, "api_key") == [KEY_FOR_NEW_ORIGIN]
    assert accepted.status_code == 302
    connection.refresh_from_db()
    assert connection.base_url == new
    assert connection.get_api_key() == "sk_live_for_the_new_host_7c7c"


@pytest.mark.parametrize(
    "new",
    [
        "https://public-api.stora.co/v2",
        "https://PUBLIC-API.stora.co",
        "https://public-api.stora.co:443",
    ],
)
def test_a_new_path_on_the_same_origin_keeps_the_stored_key(admin_client, new):
    connection = make_connection(base_url="https://public-api.stora.co")

    response = admin_client.post(change_url(connection), form_data(base_url=new, api_key=""))

    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.get_api_key() == SECRET


@pytest.fixture
def view_only_staff_client(client):
    user = User.objects.create_user("auditor", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_connection"))
    client.force_login(user)
    return client


def test_view_only_staff_cannot_run_test_connection(view_only_staff_client, fake_api):
    connection = make_connection(base_url=fake_api.url)

    changelist = view_only_staff_client.get(CHANGELIST)
    response = view_only_staff_client.post(
        CHANGELIST,
        {"action": "test_connection", "_selected_action": [connection.pk]},
        follow=True,
    )

    assert changelist.status_code == 200
    assert "test_connection" not in changelist.content.decode()
    assert f"{connection.label} ({connection.slug}): OK" not in response.content.decode()
    assert fake_api.requests == []
