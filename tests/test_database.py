"""The database connection: a web thread keeps it between requests instead of opening one for
each (with SQLite: the pragmas and the schema read again, about as much as a page's own
queries). Checked with the production settings on a database file, in a subprocess: the test
suite's in-memory database is never closed, whatever the setting."""

from __future__ import annotations

from tests.test_config import manage

KEPT = """
from django.db import close_old_connections, connection
connection.ensure_connection()
first = connection.connection
close_old_connections()  # what Django runs at the end of every request
connection.ensure_connection()
print("kept" if connection.connection is first else "reopened")
"""


def test_a_request_leaves_its_connection_open_for_the_next(tmp_path):
    result = manage(
        "shell", "-c", KEPT, DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "kept"


PAGE_CACHE = """
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("PRAGMA cache_size")
    print(cursor.fetchone()[0])
"""


def test_a_kept_sqlite_connection_holds_a_small_page_cache(tmp_path):
    """Kept by every web thread, each connection's own cache would add up (2 MB by default)."""
    result = manage(
        "shell", "-c", PAGE_CACHE, DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "-512"  # KiB
