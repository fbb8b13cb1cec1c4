"""Who may reach what: every URL in the URLconf is walked, so a new view is covered by default."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

pytestmark = pytest.mark.django_db

# Reachable without logging in. Adding a name here is a deliberate, reviewed decision.
PUBLIC_URL_NAMES = {"login", "admin:login"}
# Called by a vendor, never by a browser: no login, authenticated by the signature instead
# (tests/sync/test_webhooks.py).
PUBLIC_WEBHOOK_NAMES = {"sync:webhook"}

# The deal writes and edit forms as of the deal screens; the generic walk below covers new ones.
KNOWN_DEAL_WRITES = {
    "deals:field_save",
    "deals:change_stage",
    "deals:mark_won",
    "deals:mark_lost",
    "deals:reopen",
}
KNOWN_DEAL_EDIT_FORMS = {"deals:field_edit", "deals:lose_form", "deals:reopen_form"}

SAMPLE_BY_CONVERTER = {
    "int": "1",
    "path": "sample/path",
    "uuid": "00000000-0000-0000-0000-000000000001",
}


@dataclass(frozen=True)
class Endpoint:
    url: str
    name: str  # "namespace:name", or the URL itself for an unnamed pattern
    namespace: str
    callback: object


def sample_route(route: str) -> str:
    def replace(match: re.Match) -> str:
        return SAMPLE_BY_CONVERTER.get(match.group(1) or "str", "sample")

    return re.sub(r"<(?:(\w+):)?\w+>", replace, route)


def sample_regex(regex: str) -> str:
    def replace(match: re.Match) -> str:
        body = match.group(1)
        # An alternation of plain words (admin's app_label) -> its first word; anything else -> 1.
        return body.split("|")[0] if re.fullmatch(r"[\w|-]+", body) else "1"

    text = re.sub(r"\(\?P<\w+>([^)]*)\)", replace, regex)
    return text.lstrip("^").removesuffix("\\Z").removesuffix("$").replace("\\", "")


def sample_url(pattern) -> str:
    if isinstance(pattern, RoutePattern):
        return sample_route(str(pattern))
    if isinstance(pattern, RegexPattern):
        return sample_regex(str(pattern))
    raise AssertionError(f"unknown pattern type {pattern!r}")


def walk(patterns, prefix: str = "/", namespace: str = "") -> list[Endpoint]:
    endpoints = []
    for entry in patterns:
        url = prefix + sample_url(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            endpoints += walk(entry.url_patterns, url, inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or url
            endpoints.append(Endpoint(url, name, namespace, entry.callback))
    return endpoints


ENDPOINTS = walk(get_resolver().url_patterns)
DEALS_ENDPOINTS = [e for e in ENDPOINTS if e.namespace == "deals"]


def test_the_walk_finds_the_known_urls_and_each_sample_resolves_to_its_view():
    names = {e.name for e in ENDPOINTS}
    assert {"login", "logout", "deals:list", "admin:index", "admin:login"} <= names
    for endpoint in ENDPOINTS:
        assert resolve(endpoint.url.split("?")[0]).func == endpoint.callback, endpoint


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if e.name not in PUBLIC_URL_NAMES | PUBLIC_WEBHOOK_NAMES],
    ids=lambda e: e.name,
)
def test_every_url_requires_login(client, endpoint):
    response = client.get(endpoint.url)
    assert response.status_code == 302, endpoint
    location = response["Location"]
    if endpoint.namespace == "admin":
        assert location.startswith(("/admin/login/", "/accounts/login/")), location
    else:
        assert location.startswith("/accounts/login/?next="), location


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.name in PUBLIC_URL_NAMES], ids=lambda e: e.name
)
def test_login_pages_are_public(client, endpoint):
    assert client.get(endpoint.url).status_code == 200


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.name in PUBLIC_WEBHOOK_NAMES], ids=lambda e: e.name
)
def test_webhook_receivers_take_only_posts_and_refuse_an_unsigned_one(client, endpoint):
    assert client.get(endpoint.url).status_code == 405
    assert client.post(endpoint.url, b"{}", content_type="application/json").status_code == 404


# --- Roles -------------------------------------------------------------------------------------


@pytest.fixture
def no_connections(settings):
    settings.STORA_API_KEY = ""
    settings.NODESTASH_API_KEY = ""


def test_viewer_is_refused_on_every_deals_write(client, viewer_user, no_connections):
    client.force_login(viewer_user)
    refused = []
    for endpoint in DEALS_ENDPOINTS:
        response = client.post(endpoint.url, {"name": "Changed by a viewer"})
        # 403: a write the viewer may not make; 405: a read-only URL that takes no POST at all.
        assert response.status_code in (403, 405), (endpoint, response.status_code)
        if response.status_code == 403:
            refused.append(endpoint.name)
    if len(DEALS_ENDPOINTS) > 1:
        # Once the deals app has more than its list view, some of them are writes.
        assert refused, "no deals URL refused a viewer's POST; are writes reachable by POST?"
    known = {e.name for e in DEALS_ENDPOINTS}
    assert KNOWN_DEAL_WRITES & known <= set(refused)


def test_viewer_is_refused_the_edit_forms(client, viewer_user, no_connections):
    client.force_login(viewer_user)
    for endpoint in DEALS_ENDPOINTS:
        if endpoint.name in KNOWN_DEAL_EDIT_FORMS:
            assert client.get(endpoint.url).status_code == 403, endpoint


def test_viewer_may_read_the_deal_list(client, viewer_user, no_connections):
    client.force_login(viewer_user)
    assert client.get("/deals/").status_code == 200


def test_sales_user_may_see_the_deal_list(client, sales_user, no_connections):
    client.force_login(sales_user)
    assert client.get("/deals/").status_code == 200
    assert sales_user.has_perm("deals.edit_deals")


def test_viewer_has_no_edit_permission(viewer_user):
    assert not viewer_user.has_perm("deals.edit_deals")


def test_staff_user_reaches_the_admin(client, django_user_model):
    staff = django_user_model.objects.create_user(
        username="staff", password="unused-password-1", is_staff=True
    )
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


def test_non_staff_user_is_sent_to_the_admin_login(client, sales_user):
    client.force_login(sales_user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
