"""Fixtures both adapter test modules share; each module defines its own ``adapter``."""

from __future__ import annotations

import json

import pytest

from dealdesk.providers.base import ReferenceData

EXAMPLES = "/work/shared/api/examples/"


def example(provider: str, name: str) -> dict:
    """The vendor's documented example ``name`` for ``provider`` (``../shared/api/examples/``)."""
    with open(f"{EXAMPLES}{provider}/{name}", encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture
def ref(adapter, sandbox) -> ReferenceData:
    """The module's adapter's reference data, with the request log cleared after reading it."""
    data = adapter.reference_data()
    sandbox.clear_log()
    return data
