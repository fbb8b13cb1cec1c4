"""Optional client libraries a process does not load unless its configuration uses them.

huey's storage module imports every backend it finds installed (redis, psycopg) whether the
queue uses it or not, and every web and worker process imports huey: about 19 MB of resident
memory per process (10.8 MB psycopg, 8.7 MB redis, measured on Python 3.11) that a SQLite,
file-cache deployment (``make run``, the benchmark) never uses. ``settings.py`` calls
``skip_unused_backends`` once it knows the database, cache and queue; a library it skips then
fails to import (``ImportError``), which huey and Django treat as "not installed".
"""

from __future__ import annotations

import sys


def skip_unused_backends(
    *, database_engine: str, cache_backend: str, queue_class: str
) -> list[str]:
    """Mark psycopg and redis as absent in this process when nothing configured needs them;
    returns the names skipped. A library already imported is left alone."""
    needed = {
        "psycopg": "postgresql" in database_engine,
        "redis": "redis" in cache_backend.lower() or "redis" in queue_class.lower(),
    }
    skipped = []
    for module, used in needed.items():
        if not used and module not in sys.modules:
            sys.modules[module] = None  # type: ignore[assignment]  # ``import`` raises ImportError
            skipped.append(module)
    return skipped
