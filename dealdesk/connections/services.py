"""Reads and writes of API connections, and the admin's "Test connection" check."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from dealdesk.connections.crypto import UndecryptableSecret
from dealdesk.connections.models import Connection, Origin
from dealdesk.deals.problems import connection_test_words, problem_kind
from dealdesk.providers import adapter_for
from dealdesk.providers.assumptions import FELL_BACK
from dealdesk.providers.base import ProviderError
from dealdesk.providers.registry import PROVIDERS

logger = logging.getLogger("dealdesk.connections")


@dataclass(frozen=True)
class EnvironmentConnection:
    """A connection an operator configured through environment variables."""

    provider: str
    label: str
    base_url: str
    api_key: str


def environment_connections() -> list[EnvironmentConnection]:
    """The connections the settings ask for: one per registered provider whose API key is
    set (``<PREFIX>_API_KEY``, see providers/registry.py)."""
    found = []
    for spec in PROVIDERS.values():
        key = getattr(settings, spec.key_setting, "")
        if key:
            url = getattr(settings, spec.url_setting)
            found.append(EnvironmentConnection(spec.name, spec.label, base_url=url, api_key=key))
    return found


def _stored_key_matches(connection: Connection, api_key: str) -> bool:
    try:
        return connection.get_api_key() == api_key
    except UndecryptableSecret:
        return False


def connection_sync_environment() -> None:
    """Upsert one connection per provider key given in the environment (slug = provider name)
    and delete environment connections whose variable is gone. Writes only what changed."""
    wanted = {c.provider: c for c in environment_connections()}
    with transaction.atomic():
        stale = Connection.objects.filter(origin=Origin.ENVIRONMENT).exclude(slug__in=list(wanted))
        for gone in stale:
            logger.info("Removing connection %s: its API key left the environment", gone.slug)
            gone.delete()
        for provider, env in wanted.items():
            connection = Connection.objects.filter(slug=provider).first()
            if connection is None:
                connection = Connection(slug=provider)
            elif connection.origin != Origin.ENVIRONMENT:
                logger.warning(
                    "The environment's %s API key replaces connection %s from %s",
                    env.label,
                    connection.slug,
                    connection.get_origin_display(),
                )
            unchanged = (
                # django-stubs types ``pk`` as int, but it is None until the first save.
                connection.pk is not None  # type: ignore[redundant-expr]
                and connection.origin == Origin.ENVIRONMENT
                and connection.provider == provider
                and connection.label == env.label
                and connection.base_url == env.base_url
                and connection.enabled
                and _stored_key_matches(connection, env.api_key)
            )
            if unchanged:
                continue
            connection.provider = provider
            connection.label = env.label
            connection.base_url = env.base_url
            connection.enabled = True
            connection.origin = Origin.ENVIRONMENT
            connection.set_api_key(env.api_key)
            connection.save()


def sync_environment_after_migrate(*, using: str = DEFAULT_DB_ALIAS, **_kwargs: Any) -> None:
    """``post_migrate`` handler: store environment keys once the table exists (it does not
    after ``migrate connections zero``)."""
    if Connection._meta.db_table in connections[using].introspection.table_names():
        connection_sync_environment()


_environment_synced = False
_environment_sync_lock = threading.Lock()


def _sync_environment_once() -> None:
    """Once per process, so a key added to the environment shows up without a migrate."""
    global _environment_synced
    if _environment_synced:
        return
    with _environment_sync_lock:
        if not _environment_synced:
            connection_sync_environment()
            _environment_synced = True


def connection_list(*, enabled_only: bool = True) -> list[Connection]:
    _sync_environment_once()
    connections = Connection.objects.all()
    if enabled_only:
        connections = connections.filter(enabled=True)
    return list(connections)


def connection_get(*, slug: str) -> Connection:
    """Raises ``Connection.DoesNotExist`` for an unknown slug."""
    _sync_environment_once()
    return Connection.objects.get(slug=slug)


# --- Test connection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    level: int  # a django.contrib.messages level
    message: str


def connection_assumptions(*, connection: Connection) -> list[str]:
    """One line per ASSUMED vendor behaviour: held, fell back (and what DealDesk does instead),
    or not checked yet. Recorded by the adapters as pages use the connection."""
    try:
        report = adapter_for(connection.info()).assumption_report()
    except UndecryptableSecret as error:
        return [error.message]
    lines = []
    for status in report:
        line = str(status)
        if status.state == FELL_BACK:
            line += f" — {status.assumption.fallback}"
        lines.append(line)
    return lines


def connection_test(*, connection: Connection) -> ConnectionTestResult:
    """One cheap authenticated read against the connection, reported in plain words."""
    name = f"{connection.label} ({connection.slug})"
    try:
        adapter_for(connection.info()).ping()
    except UndecryptableSecret as error:
        return ConnectionTestResult(False, messages.ERROR, f"{name}: {error.message}")
    except ProviderError as error:
        level = messages.WARNING if problem_kind(error) == "rate_limited" else messages.ERROR
        return ConnectionTestResult(False, level, f"{name}: {connection_test_words(error)}")
    return ConnectionTestResult(True, messages.SUCCESS, f"{name}: OK")
