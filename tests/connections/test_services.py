import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from dealdesk.connections.models import Connection, Origin
from dealdesk.connections.services import (
    connection_get,
    connection_list,
    connection_sync_environment,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_environment_keys(settings):
    settings.STORA_API_KEY = ""
    settings.NODESTASH_API_KEY = ""
    connection_sync_environment()
    return settings


def make_connection(
    *, slug: str, enabled: bool = True, key: str = "sk_admin_key_9f8e"
) -> Connection:
    connection = Connection(
        provider="stora",
        label=slug.title(),
        slug=slug,
        base_url="https://public-api.stora.co",
        enabled=enabled,
    )
    connection.set_api_key(key)
    connection.save()
    return connection


def test_environment_key_creates_a_connection_named_after_the_provider(no_environment_keys):
    settings = no_environment_keys
    settings.STORA_API_KEY = "stora-env-key-1a2b"
    settings.STORA_API_URL = "http://127.0.0.1:9/stora/2025-09"
    connection_sync_environment()
    connection = Connection.objects.get(slug="stora")
    assert connection.origin == Origin.ENVIRONMENT
    assert connection.provider == "stora"
    assert connection.label == "Stora"
    assert connection.base_url == "http://127.0.0.1:9/stora/2025-09"
    assert connection.get_api_key() == "stora-env-key-1a2b"
    assert connection.api_key_hint == "••••1a2b"
    assert "stora-env-key-1a2b" not in connection.api_key_encrypted
    assert not Connection.objects.filter(slug="nodestash").exists()


def test_nodestash_environment_key_gets_its_own_connection(no_environment_keys):
    settings = no_environment_keys
    settings.NODESTASH_API_KEY = "nds_live_env_5c6d"
    connection_sync_environment()
    connection = Connection.objects.get(slug="nodestash")
    assert (connection.provider, connection.label) == ("nodestash", "nodestash")
    assert connection.base_url == settings.NODESTASH_API_URL
    assert connection.get_api_key() == "nds_live_env_5c6d"


def test_unchanged_environment_writes_nothing(no_environment_keys):
    no_environment_keys.STORA_API_KEY = "stora-env-key-1a2b"
    connection_sync_environment()
    updated_at = Connection.objects.get(slug="stora").updated_at
    with CaptureQueriesContext(connections["default"]) as queries:
        connection_sync_environment()
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements.count("SELECT") == 2
    assert not {"INSERT", "UPDATE", "DELETE"} & set(statements)
    assert Connection.objects.get(slug="stora").updated_at == updated_at


def test_changed_environment_key_and_url_are_stored(no_environment_keys):
    settings = no_environment_keys
    settings.STORA_API_KEY = "stora-env-key-1a2b"
    connection_sync_environment()
    settings.STORA_API_KEY = "stora-new-key-3c4d"
    settings.STORA_API_URL = "https://stora.example.com"
    connection_sync_environment()
    connection = Connection.objects.get(slug="stora")
    assert connection.get_api_key() == "stora-new-key-3c4d"
    assert connection.api_key_hint == "••••3c4d"
    assert connection.base_url == "https://stora.example.com"


def test_connection_whose_variable_is_gone_is_removed(no_environment_keys):
    settings = no_environment_keys
    settings.STORA_API_KEY = "stora-env-key-1a2b"
    connection_sync_environment()
    settings.STORA_API_KEY = ""
    connection_sync_environment()
    assert not Connection.objects.filter(slug="stora").exists()


def test_admin_connections_are_left_alone_by_the_sync(no_environment_keys):
    admin_connection = make_connection(slug="stora-eu")
    connection_sync_environment()
    admin_connection.refresh_from_db()
    assert admin_connection.origin == Origin.ADMIN
    assert admin_connection.get_api_key() == "sk_admin_key_9f8e"


def test_environment_key_takes_over_an_admin_connection_with_the_provider_slug(
    no_environment_keys,
):
    make_connection(slug="stora")
    no_environment_keys.STORA_API_KEY = "stora-env-key-1a2b"
    connection_sync_environment()
    connection = Connection.objects.get(slug="stora")
    assert connection.origin == Origin.ENVIRONMENT
    assert connection.get_api_key() == "stora-env-key-1a2b"


def test_environment_connection_stored_under_another_encryption_key_is_rewritten(
    no_environment_keys,
):
    no_environment_keys.STORA_API_KEY = "stora-env-key-1a2b"
    connection_sync_environment()
    Connection.objects.filter(slug="stora").update(api_key_encrypted="gAAAAA-garbage")
    connection_sync_environment()
    assert Connection.objects.get(slug="stora").get_api_key() == "stora-env-key-1a2b"


def test_connection_list_returns_enabled_connections_by_label(no_environment_keys):
    make_connection(slug="zeta")
    make_connection(slug="alpha")
    make_connection(slug="off", enabled=False)
    assert [c.slug for c in connection_list()] == ["alpha", "zeta"]
    assert [c.slug for c in connection_list(enabled_only=False)] == ["alpha", "off", "zeta"]


def test_connection_get_finds_by_slug_or_raises(no_environment_keys):
    make_connection(slug="alpha")
    assert connection_get(slug="alpha").label == "Alpha"
    with pytest.raises(Connection.DoesNotExist):
        connection_get(slug="missing")
