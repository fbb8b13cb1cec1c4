"""Connections rows for the deal service tests: the sandbox's two simulators, default tokens."""

from __future__ import annotations

import pytest

from dealdesk.connections.models import Connection
from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN


def make_connection(*, slug: str, label: str, provider: str, base_url: str, api_key: str):
    connection = Connection(slug=slug, label=label, provider=provider, base_url=base_url)
    connection.set_api_key(api_key)
    connection.save()
    return connection


@pytest.fixture
def connections(db, sandbox_server, sandbox) -> dict[str, Connection]:
    """Connections "stora" (label "Stora") and "nodestash" pointing at the running sandbox."""
    return {
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


@pytest.fixture
def no_rate_limits(sandbox, settings):
    """For tests that walk many pages quickly: neither side's rate limit is under test."""
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    sandbox.set_rate_limiting("all", False)
