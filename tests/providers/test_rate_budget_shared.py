"""Several app processes on one shared cache spend one rate budget per API key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from dealdesk.providers.base import RateLimited
    from dealdesk.providers.http import WRITE, RateBudget
    budget = RateBudget(scope=sys.argv[1], limits=[(50, 3600)])
    sent = refused = 0
    for _ in range(40):
        try:
            budget.spend(connection_label="Stora", priority=WRITE)  # the whole window
            sent += 1
        except RateLimited:
            refused += 1
    print(json.dumps({"sent": sent, "refused": refused}))
    """
)

shared_cache = pytest.mark.skipif(
    "redis" not in settings.CACHES["default"]["BACKEND"].lower(),
    reason="needs a shared cache server: runs under `make test-postgres` (CACHE_URL=redis://…)",
)


@shared_cache
def test_two_app_processes_on_one_redis_share_one_budget_per_api_key():
    scope = f"shared-test-{os.getpid()}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, scope],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for _ in range(2)
    ]
    results = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    assert sum(r["sent"] for r in results) == 50  # one budget of 50, not 50 each
    assert sum(r["refused"] for r in results) == 30
