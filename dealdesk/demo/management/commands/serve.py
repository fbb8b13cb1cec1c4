"""``manage.py serve``: what ``make run`` starts. The demo sandbox when no key is set, a first sync
of the deal store, the background sync worker (``manage.py run_huey``), then the app.

Django's development server runs in this process with the autoreloader off: a reloader would run
this command twice and start a second sandbox.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dealdesk.demo.setup import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    DemoStartResult,
    SandboxStartError,
    demo_setup_needed,
    demo_start,
)


class Command(BaseCommand):
    help = (
        "Run DealDesk locally. With no API key configured, first start the built-in sandbox "
        "with demo data, connect to it and create a demo login."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=settings.PORT, help="default: PORT, else 8000"
        )
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--seed", default="demo", help="the sandbox's data: demo, large, contacts or N"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        if not settings.DEBUG and demo_setup_needed():
            # A demo/demo login must never appear on a server that may face the internet.
            raise CommandError(
                "No API key is configured and DEBUG is off: the demo sandbox and its demo login "
                "only start with DEBUG=true. Set STORA_API_KEY / NODESTASH_API_KEY, or add a "
                "connection in Django admin."
            )
        try:
            result = demo_start(seed=options["seed"])
        except SandboxStartError as error:
            raise CommandError(str(error)) from None
        if result.sandbox is not None:
            atexit.register(result.sandbox.stop)
        self._first_sync()
        if result.sandbox is not None:
            from dealdesk.sync.webhooks import webhooks_register_demo

            webhooks_register_demo(f"http://127.0.0.1:{port}")  # the demo is live at once
        worker = start_sync_worker()
        atexit.register(stop_sync_worker, worker)
        self._announce(result, _browser_url(host, port))
        try:
            call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            stop_sync_worker(worker)
            if result.sandbox is not None:
                result.sandbox.stop()

    def _first_sync(self) -> None:
        """A short first sync here, so the first page already shows deals; the worker goes on
        from wherever it stopped."""
        from dealdesk.connections.models import Connection
        from dealdesk.sync.engine import sync_run

        for connection in Connection.objects.filter(enabled=True):
            report = sync_run(connection, time_limit=FIRST_SYNC_SECONDS)
            if report.error:
                self.stdout.write(
                    self.style.WARNING(f"First sync of {connection.label}: {report.error}")
                )

    def _announce(self, result: DemoStartResult, url: str) -> None:
        if result.sandbox is None:
            self.stdout.write("API keys are configured: the built-in sandbox stays off.")
            if result.disabled_connections:
                self.stdout.write(
                    f"Disabled {result.disabled_connections} connection(s) left by a sandbox demo."
                )
            if result.retired_demo_user:
                self.stdout.write(
                    self.style.WARNING(f"Deactivated the demo login {DEMO_USERNAME!r}.")
                )
            self.stdout.write(f"DealDesk: {url}")
            return
        sandbox = result.sandbox
        self.stdout.write(
            self.style.SUCCESS("No API key is configured: DealDesk runs on the built-in sandbox.")
        )
        self.stdout.write(f"  Open        {url}")
        self.stdout.write(
            f"  Log in      {DEMO_USERNAME} / {DEMO_PASSWORD}   "
            "(a DEMO account with demo data; it is never created once a real key is set)"
        )
        self.stdout.write(f"  Sandbox     {sandbox.url}  (faults: {sandbox.url}/__sandbox/)")
        self.stdout.write("  Sync        a background worker keeps the deal store fresh")
        self.stdout.write("  Live        Stora's webhooks reach this server; open pages update")
        self.stdout.write("")


FIRST_SYNC_SECONDS = 10.0


def start_sync_worker() -> subprocess.Popen:
    """The huey consumer that keeps the store in sync, as a child process of this one."""
    manage = str(settings.BASE_DIR / "manage.py")
    return subprocess.Popen(  # noqa: S603 - our own manage.py with fixed arguments
        [
            sys.executable,
            manage,
            "run_huey",
            "--workers",
            "2",
            "--worker-type",
            "thread",
            "--max-delay",
            "1",
            "--quiet",
        ],
        env=os.environ.copy(),
    )


def stop_sync_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


def _browser_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - only choosing what to print
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"
