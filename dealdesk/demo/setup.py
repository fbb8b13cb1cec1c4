"""The demo ``make run`` gives when no API key is configured.

When neither key is set and no real connection exists, ``manage.py serve`` starts the sandbox in a
child process, points the ``stora`` and ``nodestash`` connections at it and ensures a ``demo``
login. As soon as a real key is configured none of that happens: the sandbox does not start, the
demo login is not created (a leftover one is switched off) and leftover sandbox connections are
disabled, so a real deployment never talks to fake data or accepts demo/demo.

Whichever server starts the app, the same clean-up runs whenever DEBUG is off or a real key is
configured: after every ``migrate`` (``post_migrate``) and when a WSGI server loads
``dealdesk.wsgi`` (gunicorn, ``runserver``). The deploy check ``dealdesk.E001`` fails while an
active demo login exists with DEBUG off.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core import checks
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from dealdesk.connections.models import Connection, Origin, Provider
from dealdesk.deals.roles import SALES_GROUP
from dealdesk.providers.registry import PROVIDERS
from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN

logger = logging.getLogger("dealdesk.demo")

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"  # only ever for the sandbox demo; see demo_user_retire
DEMO_ADMIN_APPS = ("connections", "deals", "sync")  # the apps whose admin pages the demo may use
STARTUP_TIMEOUT_SECONDS = 30
_LISTENING = re.compile(r"Sandbox listening on (http://[^\s:]+:(\d+))")


class SandboxStartError(Exception):
    """The sandbox child process did not come up; the message carries its output."""


@dataclass
class SandboxProcess:
    """A ``manage.py sandbox`` child process serving on loopback."""

    process: subprocess.Popen
    url: str
    port: int
    stora_token: str = DEFAULT_STORA_TOKEN
    nodestash_token: str = DEFAULT_NODESTASH_TOKEN
    output: list[str] = field(default_factory=list)

    @property
    def stora_url(self) -> str:
        return f"{self.url}/stora"

    @property
    def nodestash_url(self) -> str:
        return f"{self.url}/nodestash/v1"

    def stop(self, timeout: float = 5) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


# --- decisions ----------------------------------------------------------------------------------


def real_key_configured() -> bool:
    """True when an API key is set in the settings or any non-sandbox connection exists."""
    if any(getattr(settings, spec.key_setting, "") for spec in PROVIDERS.values()):
        return True
    return Connection.objects.exclude(origin=Origin.SANDBOX).exists()


def demo_setup_needed() -> bool:
    return not real_key_configured()


# --- the sandbox child process ------------------------------------------------------------------


def sandbox_process_start(
    *, seed: str = "demo", timeout: float = STARTUP_TIMEOUT_SECONDS
) -> SandboxProcess:
    """Start ``manage.py sandbox`` on a free loopback port and wait until it answers.

    The child stops when its standard input closes, so it dies with this process even when this
    one is killed outright; call ``stop()`` (or let atexit do it) for an orderly end. It runs in
    its own session, so Ctrl-C in the terminal reaches only the dashboard.
    """
    command = [
        sys.executable,
        str(settings.BASE_DIR / "manage.py"),
        "sandbox",
        "--port=0",
        "--host=127.0.0.1",
        f"--seed={seed}",
        "--exit-on-stdin-eof",
    ]
    process = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump_lines, args=(process, lines), daemon=True).start()
    output: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:  # the child exited before it was listening
            break
        output.append(line.rstrip())
        match = _LISTENING.search(line)
        if match:
            sandbox = SandboxProcess(process, match.group(1), int(match.group(2)), output=output)
            _wait_until_answering(f"{sandbox.url}/__sandbox/", deadline)
            return sandbox
    _stop_quietly(process)
    raise SandboxStartError("The sandbox did not start:\n" + "\n".join(output[-30:]))


def _pump_lines(process: subprocess.Popen, lines: queue.Queue[str | None]) -> None:
    """Read the child's output so its pipe never fills; ``None`` marks its end."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


def _wait_until_answering(url: str, deadline: float) -> None:
    while True:
        try:
            requests.get(url, timeout=1).raise_for_status()
            return
        except requests.RequestException as error:
            if time.monotonic() > deadline:
                raise SandboxStartError(f"The sandbox at {url} does not answer: {error}") from None
            time.sleep(0.05)


def _stop_quietly(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(5)


# --- connections and the demo login --------------------------------------------------------------


@transaction.atomic
def demo_connect(
    *,
    stora_url: str,
    nodestash_url: str,
    stora_token: str = DEFAULT_STORA_TOKEN,
    nodestash_token: str = DEFAULT_NODESTASH_TOKEN,
) -> list[Connection]:
    """Point the ``stora`` and ``nodestash`` sandbox connections at a running sandbox.

    Never takes over a real connection that happens to use one of those slugs.
    """
    connections = []
    for provider, label, base_url, token in (
        (Provider.STORA, "Stora", stora_url, stora_token),
        (Provider.NODESTASH, "nodestash", nodestash_url, nodestash_token),
    ):
        connection = Connection.objects.filter(slug=provider.value).first() or Connection(
            slug=provider.value, origin=Origin.SANDBOX
        )
        if connection.origin != Origin.SANDBOX:
            raise ValueError(f"connection {provider.value!r} is a real one; leaving it alone")
        connection.provider = provider
        connection.label = label
        connection.base_url = base_url
        connection.origin = Origin.SANDBOX
        connection.enabled = True
        connection.set_api_key(token)
        connection.save()
        connections.append(connection)
    return connections


def sandbox_connections_disable() -> int:
    """Switch off connections left over from an earlier demo run; returns how many."""
    return Connection.objects.filter(origin=Origin.SANDBOX, enabled=True).update(enabled=False)


@transaction.atomic
def demo_user_ensure():
    """The ``demo``/``demo`` login: Sales (may edit deals) and staff with every permission on
    DealDesk's own admin pages (connections, stage settings, audit, sync), so the admin it is
    shown is one it can use."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=DEMO_USERNAME)
    user.set_password(DEMO_PASSWORD)
    user.is_active = True
    user.is_staff = True
    user.save()
    sales, _ = Group.objects.get_or_create(name=SALES_GROUP)
    user.groups.add(sales)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=DEMO_ADMIN_APPS)
    )
    return user


def _active_demo_user():
    """The ``demo`` account while it is active and still has the demo password, else None."""
    user = get_user_model().objects.filter(username=DEMO_USERNAME, is_active=True).first()
    if user is None or not user.check_password(DEMO_PASSWORD):
        return None
    return user


def demo_user_retire() -> bool:
    """Switch off a ``demo`` account that still has the demo password; True if one was."""
    user = _active_demo_user()
    if user is None:
        return False
    user.is_active = False
    user.set_unusable_password()
    user.save()
    return True


# --- retiring the demo, whichever server starts the app -----------------------------------------


def demo_retire_needed() -> bool:
    """The demo belongs only to a DEBUG run without real keys."""
    return not settings.DEBUG or real_key_configured()


def demo_leftovers_retire() -> tuple[int, bool]:
    """When the demo does not belong here, switch off its login and its sandbox connections.
    Returns (connections disabled, demo login deactivated)."""
    if not demo_retire_needed():
        return 0, False
    disabled, retired = sandbox_connections_disable(), demo_user_retire()
    if retired:
        logger.warning(
            "Deactivated the demo login %r: DEBUG is off or a real key is set", DEMO_USERNAME
        )
    if disabled:
        logger.warning("Disabled %d connection(s) left by a sandbox demo", disabled)
    return disabled, retired


def _demo_tables_exist(using: str = DEFAULT_DB_ALIAS) -> bool:
    tables = connections[using].introspection.table_names()
    return {Connection._meta.db_table, get_user_model()._meta.db_table} <= set(tables)


def demo_retire_after_migrate(*, using: str = DEFAULT_DB_ALIAS, **_kwargs) -> None:
    """``post_migrate`` handler (the tables are gone after ``migrate … zero``)."""
    if _demo_tables_exist(using):
        demo_leftovers_retire()


def demo_retire_at_server_start() -> None:
    """Called by ``dealdesk/wsgi.py``: any WSGI server retires the demo before its first request.
    A database that cannot be read yet (not migrated, not up) is logged, not fatal: the
    ``post_migrate`` handler and the deploy check cover it."""
    try:
        if _demo_tables_exist():
            demo_leftovers_retire()
    except DatabaseError as error:
        logger.warning("Could not check for a leftover demo login at start-up: %s", error)


def demo_login_check(app_configs=None, **_kwargs) -> list[checks.CheckMessage]:
    """Deploy check: an active demo/demo login with DEBUG off is an error."""
    if settings.DEBUG:
        return []
    try:
        active = _demo_tables_exist() and _active_demo_user() is not None
    except DatabaseError:  # no database to look at (yet): nothing to report
        return []
    if not active:
        return []
    return [
        checks.Error(
            "The demo login demo/demo is active while DEBUG is off.",
            hint="Run `manage.py migrate` (or start the app server), which deactivates it, or "
            "deactivate the user 'demo' in the admin.",
            id="dealdesk.E001",
        )
    ]


# --- the whole decision, for `manage.py serve` ----------------------------------------------------


@dataclass
class DemoStartResult:
    sandbox: SandboxProcess | None = None
    disabled_connections: int = 0
    retired_demo_user: bool = False


def demo_start(*, seed: str = "demo") -> DemoStartResult:
    """Start the demo when no real key is configured; otherwise clear away what a demo left."""
    if real_key_configured():
        return DemoStartResult(
            disabled_connections=sandbox_connections_disable(),
            retired_demo_user=demo_user_retire(),
        )
    sandbox = sandbox_process_start(seed=seed)
    try:
        demo_connect(
            stora_url=sandbox.stora_url,
            nodestash_url=sandbox.nodestash_url,
            stora_token=sandbox.stora_token,
            nodestash_token=sandbox.nodestash_token,
        )
        demo_user_ensure()
    except BaseException:
        sandbox.stop()
        raise
    return DemoStartResult(sandbox=sandbox)
