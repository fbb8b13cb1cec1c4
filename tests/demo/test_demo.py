"""The demo ``make run`` gives without keys, and the ``sandbox`` and ``serve`` commands as real
processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.management.sql import emit_post_migrate_signal

from dealdesk.connections.models import Connection, Origin
from dealdesk.deals.roles import SALES_GROUP
from dealdesk.demo.setup import (
    demo_connect,
    demo_start,
    demo_user_ensure,
    demo_user_retire,
    real_key_configured,
)
from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN

MANAGE_PY = str(Path(settings.BASE_DIR) / "manage.py")
LISTENING = re.compile(r"Sandbox listening on (http://127\.0\.0\.1:(\d+))")


def stora_deals(base_url: str, token: str) -> requests.Response:
    return requests.get(
        f"{base_url}/2025-09/deals", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def read_until(process: subprocess.Popen, pattern: re.Pattern, timeout: float = 30) -> str:
    """The child's output up to the first line matching ``pattern``."""
    output = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output += line
        if pattern.search(line):
            return output
    raise AssertionError(f"no line matching {pattern.pattern!r} in:\n{output}")


def drain(process: subprocess.Popen) -> None:
    """Read the rest of the child's output in the background: unread, a full pipe would block
    its next log line (its sync worker logs every upstream call), and with it its shutdown."""
    threading.Thread(target=process.stdout.read, daemon=True).start()


def sandbox_connection(slug: str, *, enabled: bool = True) -> Connection:
    connection = Connection(
        provider=slug, label=slug, slug=slug, base_url="http://127.0.0.1:1", origin=Origin.SANDBOX
    )
    connection.enabled = enabled
    connection.set_api_key("old-token")
    connection.save()
    return connection


# --- the decisions, in-process ----------------------------------------------------------------


@pytest.mark.django_db
def test_demo_connect_points_both_connections_at_the_sandbox(sandbox_server):
    demo_connect(stora_url=sandbox_server.stora_url, nodestash_url=sandbox_server.nodestash_url)

    stora = Connection.objects.get(slug="stora")
    nodestash = Connection.objects.get(slug="nodestash")
    assert (stora.provider, stora.label, stora.origin, stora.enabled) == (
        "stora",
        "Stora",
        Origin.SANDBOX,
        True,
    )
    assert (nodestash.provider, nodestash.label) == ("nodestash", "nodestash")
    assert stora.base_url == sandbox_server.stora_url
    assert nodestash.base_url == sandbox_server.nodestash_url
    assert stora.get_api_key() == DEFAULT_STORA_TOKEN
    assert nodestash.get_api_key() == DEFAULT_NODESTASH_TOKEN
    assert stora_deals(stora.base_url, stora.get_api_key()).status_code == 200


@pytest.mark.django_db
def test_demo_connect_again_updates_the_same_connections():
    sandbox_connection("stora", enabled=False)

    demo_connect(stora_url="http://127.0.0.1:5/stora", nodestash_url="http://127.0.0.1:5/ns/v1")
    demo_connect(stora_url="http://127.0.0.1:6/stora", nodestash_url="http://127.0.0.1:6/ns/v1")

    assert Connection.objects.count() == 2
    stora = Connection.objects.get(slug="stora")
    assert (stora.base_url, stora.enabled) == ("http://127.0.0.1:6/stora", True)
    assert stora.get_api_key() == DEFAULT_STORA_TOKEN


@pytest.mark.django_db
def test_demo_connect_never_takes_over_a_real_connection():
    real = sandbox_connection("stora")
    Connection.objects.filter(pk=real.pk).update(origin=Origin.ADMIN)

    with pytest.raises(ValueError, match="real"):
        demo_connect(stora_url="http://127.0.0.1:5/stora", nodestash_url="http://x/v1")

    assert Connection.objects.get(slug="stora").base_url == "http://127.0.0.1:1"


@pytest.mark.django_db
def test_demo_user_is_a_staff_sales_login_with_password_demo():
    demo_user_ensure()
    user = demo_user_ensure()  # twice: still one account

    assert get_user_model().objects.filter(username="demo").count() == 1
    assert user.check_password("demo")
    assert user.is_staff and user.is_active and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == [SALES_GROUP]


@pytest.mark.django_db
def test_the_demo_login_can_use_the_admin_the_readme_promises(client):
    client.force_login(demo_user_ensure())

    index = client.get("/admin/")
    connections = client.get("/admin/connections/connection/")
    deals = client.get("/deals/")

    assert index.status_code == 200
    assert "permission" not in index.text.lower()
    assert connections.status_code == 200
    assert 'href="/admin/"' in deals.text  # the Admin link, shown because it leads somewhere


@pytest.mark.django_db
def test_demo_login_works_through_the_login_page(client):
    demo_user_ensure()

    response = client.post("/accounts/login/", {"username": "demo", "password": "demo"})

    assert response.status_code == 302
    assert client.session.get("_auth_user_id")


@pytest.mark.django_db
def test_no_key_and_only_sandbox_connections_means_no_real_key():
    sandbox_connection("stora")

    assert real_key_configured() is False


@pytest.mark.django_db
def test_an_admin_connection_counts_as_a_real_key():
    connection = sandbox_connection("acme")
    Connection.objects.filter(pk=connection.pk).update(origin=Origin.ADMIN)

    assert real_key_configured() is True
    assert demo_start().sandbox is None


@pytest.mark.django_db
def test_with_a_real_key_nothing_starts_no_demo_login_and_old_sandbox_connections_are_off(
    settings,
):
    settings.STORA_API_KEY = "real-stora-key"
    sandbox_connection("stora")
    sandbox_connection("nodestash")

    result = demo_start()

    assert result.sandbox is None
    assert result.disabled_connections == 2
    assert not Connection.objects.filter(enabled=True).exists()
    assert not get_user_model().objects.filter(username="demo").exists()


@pytest.mark.django_db
def test_with_a_real_key_a_leftover_demo_login_is_switched_off(settings):
    settings.NODESTASH_API_KEY = "nds_live_real"
    demo_user_ensure()

    result = demo_start()

    user = get_user_model().objects.get(username="demo")
    assert result.retired_demo_user is True
    assert not user.is_active
    assert not user.check_password("demo")


@pytest.mark.django_db
def test_a_real_user_called_demo_is_left_alone(settings):
    settings.STORA_API_KEY = "real-stora-key"
    get_user_model().objects.create_user("demo", password="a-real-strong-password")

    assert demo_start().retired_demo_user is False
    assert get_user_model().objects.get(username="demo").is_active


@pytest.mark.django_db
def test_without_a_key_demo_start_runs_the_sandbox_and_connects_to_it():
    result = demo_start()
    try:
        sandbox = result.sandbox
        assert sandbox is not None
        stora = Connection.objects.get(slug="stora")
        nodestash = Connection.objects.get(slug="nodestash")
        assert stora.base_url == f"http://127.0.0.1:{sandbox.port}/stora"
        assert nodestash.base_url == f"http://127.0.0.1:{sandbox.port}/nodestash/v1"
        assert stora_deals(stora.base_url, stora.get_api_key()).status_code == 200
        assert get_user_model().objects.get(username="demo").groups.filter(name=SALES_GROUP)
    finally:
        if result.sandbox is not None:
            result.sandbox.stop()
    assert result.sandbox.process.poll() is not None
    with pytest.raises(requests.ConnectionError):
        stora_deals(stora.base_url, DEFAULT_STORA_TOKEN)


# --- `manage.py sandbox` as a process -----------------------------------------------------------


@pytest.fixture
def sandbox_command():
    """Start ``manage.py sandbox`` with the given arguments; everything started is stopped."""
    processes: list[subprocess.Popen] = []

    def start(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, MANAGE_PY, "sandbox", *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        process.stdout.close()


def test_sandbox_command_prints_port_and_tokens_and_serves_with_them(sandbox_command):
    process = sandbox_command(
        "--port", "0", "--stora-token", "st-123", "--nodestash-token", "nds_test_456"
    )

    output = read_until(process, re.compile(r"Press Ctrl-C"))

    url, port = LISTENING.search(output).groups()
    assert int(port) > 0
    assert f"{url}/stora" in output and f"{url}/nodestash/v1" in output
    assert "st-123" in output and "nds_test_456" in output
    assert stora_deals(f"{url}/stora", "st-123").status_code == 200
    assert stora_deals(f"{url}/stora", DEFAULT_STORA_TOKEN).status_code == 401
    assert requests.get(f"{url}/__sandbox/", timeout=5).json()["seed"] == "demo"

    process.terminate()

    assert process.wait(10) == 0
    with pytest.raises(requests.ConnectionError):
        stora_deals(f"{url}/stora", "st-123")


def test_sandbox_command_takes_seed_and_latency(sandbox_command):
    process = sandbox_command("--port", "0", "--seed", "7", "--latency-ms", "150")

    url, _ = LISTENING.search(read_until(process, LISTENING)).groups()

    status = requests.get(f"{url}/__sandbox/", timeout=5).json()
    assert status["seed"] == "7"
    assert {p["latency_ms"] for p in status["providers"].values()} == {150}
    assert stora_deals(f"{url}/stora", DEFAULT_STORA_TOKEN).elapsed.total_seconds() >= 0.15


def test_sandbox_command_stops_when_its_parent_closes_stdin(sandbox_command):
    process = sandbox_command("--port", "0", "--exit-on-stdin-eof", stdin=subprocess.PIPE)
    read_until(process, LISTENING)

    process.stdin.close()

    assert process.wait(10) == 0


@pytest.mark.parametrize(
    "args",
    [["--seed", "nonsense"], ["--port", "70000"], ["--latency-ms", "-1"], ["--stora-token", " "]],
)
def test_sandbox_command_refuses_bad_options(sandbox_command, args):
    process = sandbox_command("--port", "0", *args)

    output, _ = process.communicate(timeout=30)

    assert process.returncode != 0
    assert "Error" in output or "error" in output


def test_sandbox_command_reports_a_port_in_use(sandbox_command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = sandbox_command("--port", str(taken.getsockname()[1]))

        output, _ = process.communicate(timeout=30)

    assert process.returncode != 0
    assert "Cannot listen" in output


# --- `manage.py serve`, as `make run` starts it ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_without_keys_starts_the_demo_and_stops_the_sandbox_on_exit(tmp_path):
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "dealdesk.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STORA_API_KEY": "",
        "NODESTASH_API_KEY": "",
    }
    migrate = subprocess.run(
        [sys.executable, MANAGE_PY, "migrate", "--noinput"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, MANAGE_PY, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = read_until(serve, re.compile(r"Sandbox\s+http://"), timeout=60)
        drain(serve)  # the server and its sync worker log every request: keep the pipe moving
        assert f"http://127.0.0.1:{port}/" in output
        assert "demo / demo" in output and "DEMO account" in output
        sandbox_url = re.search(r"Sandbox\s+(http://127\.0\.0\.1:\d+)", output).group(1)
        assert stora_deals(f"{sandbox_url}/stora", DEFAULT_STORA_TOKEN).status_code == 200
        login_page = _wait_for_ok(f"http://127.0.0.1:{port}/accounts/login/")
        assert "csrfmiddlewaretoken" in login_page.text
        webhooks = requests.get(f"{sandbox_url}/__sandbox/webhooks", timeout=5).json()
        assert [e["url"] for e in webhooks["endpoints"]] == [
            f"http://127.0.0.1:{port}/webhooks/stora/stora/"
        ]  # the demo is live out of the box
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(30)
        finally:
            if serve.poll() is None:
                serve.kill()
            serve.stdout.close()
    with pytest.raises(requests.ConnectionError):
        _wait_until_refused(f"{sandbox_url}/__sandbox/")


def _wait_for_ok(url: str, timeout: float = 30, read_timeout: float = 2) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=(2, read_timeout))
            if response.ok:
                return response
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer")
        time.sleep(0.1)


def _wait_until_refused(url: str, timeout: float = 10) -> None:
    """Raises ``requests.ConnectionError`` once nothing listens at ``url`` any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        requests.get(url, timeout=2)
        time.sleep(0.1)


def test_serve_with_debug_off_and_no_key_refuses_to_create_a_demo_login(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dealdesk.settings",
        "DEBUG": "false",
        "SECRET_KEY": "s" * 50,
        "DEALDESK_ENCRYPTION_KEY": "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0wMDAwMDA=",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STORA_API_KEY": "",
        "NODESTASH_API_KEY": "",
    }
    for command in (["migrate", "--noinput"], ["serve", "--port", str(free_port())]):
        result = subprocess.run(
            [sys.executable, MANAGE_PY, *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert "DEBUG is off" in result.stderr
    assert "Sandbox" not in result.stdout
    check_users = subprocess.run(
        [
            sys.executable,
            MANAGE_PY,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; print(User.objects.count())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check_users.stdout.strip().endswith("0")


# --- The demo never outlives a switch to production ---------------------------------------------


@pytest.mark.django_db
def test_migrate_with_debug_off_retires_the_demo_login_and_sandbox_connections(settings, client):
    settings.DEBUG = False
    settings.STORA_API_KEY = settings.NODESTASH_API_KEY = ""
    demo_user_ensure()
    sandbox_connection("stora")

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert not get_user_model().objects.get(username="demo").is_active
    assert not Connection.objects.get(slug="stora").enabled
    response = client.post("/accounts/login/", {"username": "demo", "password": "demo"})
    assert response.status_code == 200 and not client.session.get("_auth_user_id")


@pytest.mark.django_db
def test_migrate_with_debug_on_and_no_key_keeps_the_demo(settings, client):
    settings.DEBUG = True
    settings.STORA_API_KEY = settings.NODESTASH_API_KEY = ""
    demo_user_ensure()

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    response = client.post("/accounts/login/", {"username": "demo", "password": "demo"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_the_deploy_check_fails_while_an_active_demo_login_exists_with_debug_off(settings):
    settings.DEBUG = False
    demo_user_ensure()

    errors = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "dealdesk.E001" in [e.id for e in errors]

    demo_user_retire()
    errors = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "dealdesk.E001" not in [e.id for e in errors]


def test_gunicorn_with_production_settings_refuses_the_demo_login_left_by_make_run(tmp_path):
    """`make run` once, then production (DEBUG off, the README's gunicorn command) on the same
    database, without running migrate in between: demo/demo no longer logs in."""
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    inherited = {  # none of the test run's own settings (tests/settings.py, pytest-playwright)
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "PYTEST", "SECURE_", "DEALDESK_", "AXES_", "DEBUG"))
        and name not in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CACHE_URL")
    }
    base = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "dealdesk.settings",
        "DATABASE_URL": database,
        "STORA_API_KEY": "",
        "NODESTASH_API_KEY": "",
    }
    production = {
        **base,
        "DEBUG": "false",
        "SECRET_KEY": "production-" + "p" * 50,
        "DEALDESK_ENCRYPTION_KEY": "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0wMDAwMDA=",
        "ALLOWED_HOSTS": "127.0.0.1",
    }

    def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, MANAGE_PY, *args], env=env, capture_output=True, text=True, timeout=120
        )

    development = {**base, "DEBUG": "true"}
    assert manage("migrate", "--noinput", env=development).returncode == 0
    ensure = "from dealdesk.demo.setup import demo_user_ensure; demo_user_ensure()"
    assert manage("shell", "-c", ensure, env=development).returncode == 0
    deploy_check = manage("check", "--deploy", env=production)
    assert deploy_check.returncode != 0
    assert "dealdesk.E001" in deploy_check.stdout + deploy_check.stderr
    assert manage("collectstatic", "--noinput", env=production).returncode == 0

    port = free_port()
    plain_http = {**production, "SECURE_SSL_REDIRECT": "false", "SECURE_COOKIES": "false"}
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dealdesk.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=settings.BASE_DIR,
        env=plain_http,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        browser = requests.Session()
        login_url = f"http://127.0.0.1:{port}/accounts/login/"
        form = _wait_for_ok(login_url, timeout=60, read_timeout=20)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        browser.cookies.update(form.cookies)
        response = browser.post(
            login_url,
            data={"username": "demo", "password": "demo", "csrfmiddlewaretoken": token},
            headers={"Referer": login_url},
            allow_redirects=False,
            timeout=10,
        )
    finally:
        gunicorn.terminate()
        gunicorn.wait(30)

    assert response.status_code == 200  # the login form again, not a redirect into the app
    assert "sessionid" not in response.cookies
    assert "correct username and password" in response.text
    deploy_check = manage("check", "--deploy", env=production)
    assert deploy_check.returncode == 0, deploy_check.stdout + deploy_check.stderr
