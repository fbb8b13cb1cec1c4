"""Shared fixtures: one sandbox over real HTTP for the whole session, reset between tests."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.test import override_settings

from dealdesk.connections.models import Connection
from dealdesk.deals.roles import SALES_GROUP, VIEWERS_GROUP, ensure_roles
from dealdesk.providers.base import ConnectionInfo
from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN, start_sandbox_server


@pytest.fixture(scope="session")
def sandbox_server():
    server = start_sandbox_server(port=0, seed="demo")
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The running ``Sandbox``: demo seed, no faults, empty request log, and the vendors' rate
    limits off so a test's own pace never trips them; rate-limit tests switch them on."""
    sandbox_server.sandbox.reset("demo")
    sandbox_server.sandbox.set_rate_limiting("all", False)
    cache.clear()
    yield sandbox_server.sandbox
    sandbox_server.sandbox.reset("demo")  # forgets queued webhook deliveries and retries
    # A delivery already on its way finishes before the test database is flushed under it.
    sandbox_server.sandbox.wait_for_webhooks(timeout=5)
    cache.clear()


@pytest.fixture
def stora_info(sandbox_server, sandbox) -> ConnectionInfo:
    return ConnectionInfo(
        slug="stora",
        label="Stora",
        provider="stora",
        base_url=sandbox_server.stora_url,
        api_key=DEFAULT_STORA_TOKEN,
    )


@pytest.fixture
def nodestash_info(sandbox_server, sandbox) -> ConnectionInfo:
    return ConnectionInfo(
        slug="nodestash",
        label="nodestash",
        provider="nodestash",
        base_url=sandbox_server.nodestash_url,
        api_key=DEFAULT_NODESTASH_TOKEN,
    )


# --- Connections rows and logged-in users for the tests through Django ---------------------------


def make_connection(*, slug: str, label: str, provider: str, base_url: str, api_key: str):
    connection = Connection(slug=slug, label=label, provider=provider, base_url=base_url)
    connection.set_api_key(api_key)
    connection.save()
    return connection


def sync_store(*connections: Connection, full: bool = False) -> None:
    """Bring the synced store up to date with the sandbox, as the background worker would."""
    from dealdesk.sync.management.commands.sync import sync_until_done

    for connection in connections or Connection.objects.filter(enabled=True):
        report = sync_until_done(connection, full=full)
        assert not report.error, report.error


@pytest.fixture
def resync(db):
    """Call to sync every enabled connection again (after changing the sandbox behind our back):
    ``resync()``, or ``resync(full=True)`` for an authoritative full walk."""

    def run(full: bool = False) -> None:
        with override_settings(DEALDESK_CLIENT_RATE_LIMITS=False):
            sync_store(full=full)

    return run


@pytest.fixture
def connections(db, sandbox_server, sandbox) -> dict[str, Connection]:
    """Connections "stora" (label "Stora") and "nodestash" pointing at the running sandbox,
    with the store already synced from it."""
    made = {
        "stora": make_connection(
            slug="stora",
            label="Stora",
            provider="stora",
            base_url=sandbox_server.stora_url,
            api_key=DEFAULT_STORA_TOKEN,
        ),
        "nodestash": make_connection(
            slug="nodestash",
            label="nodestash",
            provider="nodestash",
            base_url=sandbox_server.nodestash_url,
            api_key=DEFAULT_NODESTASH_TOKEN,
        ),
    }
    with override_settings(DEALDESK_CLIENT_RATE_LIMITS=False):
        sync_store(*made.values())
    sandbox.clear_log()  # what a test counts is what it does itself
    return made


@pytest.fixture
def no_rate_limits(sandbox, settings):
    """For tests that walk many pages quickly: neither side's rate limit is under test."""
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    sandbox.set_rate_limiting("all", False)


def make_user(username: str, group: str, *, password: str = "x", **extra) -> User:
    """A user in the role ``group`` (``SALES_GROUP`` or ``VIEWERS_GROUP``)."""
    ensure_roles()
    user = User.objects.create_user(username, password=password, **extra)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def sales_user(db) -> User:
    return make_user("sales", SALES_GROUP)


@pytest.fixture
def viewer_user(db) -> User:
    return make_user("viewer", VIEWERS_GROUP)


@pytest.fixture
def staff_user(db) -> User:
    """A Sales user who is also staff, so the pages link to the connection admin."""
    return make_user("boss", SALES_GROUP, is_staff=True)


# The logged-in clients have both sandbox connections, and the vendors' rate limits off: a page
# fans out to both sources and a test reads several; rate-limit tests inject their 429s.


@pytest.fixture
def sales_client(client, sales_user, connections, no_rate_limits):
    client.force_login(sales_user)
    return client


@pytest.fixture
def viewer_client(client, viewer_user, connections, no_rate_limits):
    client.force_login(viewer_user)
    return client


@pytest.fixture
def staff_client(client, staff_user, connections, no_rate_limits):
    client.force_login(staff_user)
    return client


# --- Every log line of the run, checked for secrets at the end (tests/security/) ---------------


class _CollectingHandler(logging.Handler):
    """Keeps every record's formatted message, tracebacks included."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is not a leak; keep going
            self.lines.append(f"{record.levelname} {record.name} <unformattable record>")


LOG_LINES = _CollectingHandler()


@pytest.fixture(scope="session", autouse=True)
def captured_log_lines():
    """Every log line emitted while the tests run, as a list of strings."""
    root = logging.getLogger()
    root.addHandler(LOG_LINES)
    yield LOG_LINES.lines
    root.removeHandler(LOG_LINES)


def secrets_in(text: str) -> list[str]:
    """Which known secrets (API keys, the encryption key, SECRET_KEY) appear in ``text``."""
    return [name for name, secret in known_secrets().items() if secret and secret in text]


def known_secrets() -> dict[str, str]:
    from django.conf import settings

    return {
        "the Stora sandbox token": DEFAULT_STORA_TOKEN,
        "the nodestash sandbox token": DEFAULT_NODESTASH_TOKEN,
        "DEALDESK_ENCRYPTION_KEY": str(settings.DEALDESK_ENCRYPTION_KEY),
        "SECRET_KEY": settings.SECRET_KEY,
        **EXTRA_SECRETS,
    }


EXTRA_SECRETS: dict[str, str] = {}  # keys a test sets on a connection (tests/security/)


_WORKER_LEAKS: set[str] = set()  # under pytest-xdist: leaks the workers reported


def pytest_testnodedown(node, error):
    """Under pytest-xdist each worker checks its own log lines; the controller collects them."""
    _WORKER_LEAKS.update(getattr(node, "workeroutput", {}).get("secret_leaks", []))


def pytest_sessionfinish(session, exitstatus):
    """The whole run's log lines must hold no secret: a leak fails the run."""
    leaks = sorted({name for line in LOG_LINES.lines for name in secrets_in(line)})
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller decides
        workeroutput["secret_leaks"] = leaks
        return
    leaks = sorted(set(leaks) | _WORKER_LEAKS)
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nSECRETS IN LOG LINES: {', '.join(leaks)} (see tests/conftest.py)")
