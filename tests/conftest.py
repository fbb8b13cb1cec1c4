"""Shared fixtures: one sandbox over real HTTP for the whole session, reset between tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache

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
    sandbox_server.sandbox.reset("demo")
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
