"""A process loads psycopg and redis only when its database, cache or queue uses them
(``dealdesk/backends.py``); checked in a fresh ``manage.py shell`` each time."""

from __future__ import annotations

from tests.test_config import manage

LOADED = (
    "import sys, django.urls; django.urls.get_resolver().url_patterns; "
    "print(sorted(m for m in ('psycopg', 'redis') if sys.modules.get(m) is not None))"
)
DEFAULTS = {"DEBUG": "true", "HUEY_REDIS_URL": ""}


def loaded(**variables: str) -> str:
    result = manage("shell", "-c", LOADED, **{**DEFAULTS, **variables})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_a_sqlite_file_cache_process_loads_neither():
    assert loaded(DATABASE_URL="sqlite:///:memory:", CACHE_URL="locmemcache://") == "[]"


def test_a_redis_cache_or_queue_loads_redis():
    assert loaded(CACHE_URL="redis://127.0.0.1:6379/1") == "['redis']"
    assert loaded(CACHE_URL="locmemcache://", HUEY_REDIS_URL="redis://127.0.0.1:6379/2") == (
        "['redis']"
    )


def test_a_postgresql_database_loads_psycopg():
    assert "psycopg" in loaded(
        DATABASE_URL="postgres://dealdesk:x@127.0.0.1:5432/dealdesk", CACHE_URL="locmemcache://"
    )
