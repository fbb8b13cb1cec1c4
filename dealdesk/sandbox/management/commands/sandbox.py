"""``manage.py sandbox``: serve both simulators over HTTP on loopback until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN, build_sandbox
from dealdesk.sandbox.control import MAX_LATENCY_MS, SEED_PATTERN
from dealdesk.sandbox.core import SandboxServer

# ``manage.py serve`` finds the port in this line; keep it stable.
LISTENING_LINE = "Sandbox listening on {url} (seed {seed})"


class Command(BaseCommand):
    help = (
        "Serve the built-in Stora and nodestash simulators on loopback: Stora at /stora, "
        "nodestash at /nodestash/v1, fault injection at /__sandbox/. State lives in memory."
    )
    requires_system_checks = []  # no database: it must start even before `migrate`

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8100, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--seed", default="demo", help="demo, large, contacts or a number")
        parser.add_argument("--stora-token", default=DEFAULT_STORA_TOKEN)
        parser.add_argument("--nodestash-token", default=DEFAULT_NODESTASH_TOKEN)
        parser.add_argument(
            "--latency-ms", type=int, default=0, help="added to every API call until a reset"
        )
        parser.add_argument(
            "--exit-on-stdin-eof",
            action="store_true",
            help="stop when standard input closes (`manage.py serve` uses it, so the sandbox "
            "never outlives the dashboard, even if that is killed)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        seed = options["seed"]
        if not SEED_PATTERN.match(seed):
            raise CommandError(
                f'--seed must be "demo", "large", "contacts" or a number, not {seed!r}'
            )
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be from 0 to 65535")
        if not 0 <= options["latency_ms"] <= MAX_LATENCY_MS:
            raise CommandError(f"--latency-ms must be from 0 to {MAX_LATENCY_MS}")
        for name in ("stora_token", "nodestash_token"):
            if not options[name].strip():
                raise CommandError(f"--{name.replace('_', '-')} must not be empty")

        sandbox = build_sandbox(
            seed=seed,
            stora_token=options["stora_token"],
            nodestash_token=options["nodestash_token"],
        )
        sandbox.set_latency("all", options["latency_ms"])
        server = SandboxServer(sandbox, host=options["host"], port=options["port"])
        try:
            server.start()
        except OSError as error:
            raise CommandError(
                f"Cannot listen on {options['host']}:{options['port']}: {error}"
            ) from None

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        if options["exit_on_stdin_eof"]:
            threading.Thread(target=_set_on_eof, args=(stop,), daemon=True).start()

        self.stdout.write(LISTENING_LINE.format(url=server.url, seed=seed))
        self.stdout.write(f"  Stora      {server.stora_url}  token: {options['stora_token']}")
        self.stdout.write(
            f"  nodestash  {server.nodestash_url}  token: {options['nodestash_token']}"
        )
        self.stdout.write(f"  Control    {server.url}/__sandbox/")
        if options["latency_ms"]:
            self.stdout.write(f"  Latency    {options['latency_ms']} ms per call")
        self.stdout.write("Press Ctrl-C to stop.")
        self.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        self.stdout.write("Sandbox stopped.")


def _set_on_eof(stop: threading.Event) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        stop.set()
