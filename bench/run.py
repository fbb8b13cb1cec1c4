"""DealDesk benchmark: the synced store under gunicorn, with its sync worker, against the sandbox.

    .venv/bin/python bench/run.py [--latency-ms 150] [--parts calls,latency,team,live,...]

Two stacks run side by side, each its own sandbox (vendor rate limits ON), SQLite database, huey
queue, gunicorn (DealDesk) and ``manage.py run_huey`` (the sync worker): ``large`` (10,000 deals
per source) and ``demo`` (~40 per source). Each store is filled first with ``manage.py sync
--wait`` (one process per connection, in parallel, timed: the backfill), then the app and the
worker start and the parts run:

- backfill    (always) how long the large seed took against the least its quota share allows
- calls       upstream calls per list, board and detail view (sync worker paused meanwhile)
- latency     warm list, detail and board, large and demo timed alternately (same noise)
- save        an inline Save of Name (writes still go upstream)
- team        20 users with think time, then 1 user: content served, vendor 429s, p95,
              upstream calls per minute
- freshness   a change made upstream (sandbox control API) until the list shows it
- live        (bench/live_pages.py, in Chromium) a change made upstream until an open deal page
              shows it, webhooks off and on; and the server's cost of 50 idle open pages
- filters     each list filter and the close-date sort ÷ the plain list (bench/filters.py)
- rss         (always) peak RSS per gunicorn worker

Prints a table and writes bench/results/latest.json. Latencies are in ms and as ratios to L:
absolute times on a shared machine are noisy, ratios measured side by side much less so.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urljoin

import requests
from filters import filter_rows, measure_filters  # bench/filters.py
from live_pages import idle_cost, update_latency

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
USER, PASSWORD = "bench", "bench-password-1"
STORA_TOKEN, NODESTASH_TOKEN = "sandbox-stora-token", "nds_test_sandbox"
PROVIDERS = ("stora", "nodestash")
PARTS = ("calls", "latency", "save", "team", "freshness", "live", "filters")
# What a view must contain to count as "served with its content".
CONTENT = {"list": "data-row", "detail": 'id="deal-title"', "board": "data-card"}

# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the process for {url} exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            requests.get(url, timeout=1, allow_redirects=False)
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up in {timeout} s")


class Stack:
    """A sandbox, and DealDesk pointed at it: gunicorn plus the huey sync worker.

    ``start()`` does everything (loadtest.py uses that); the benchmark calls the steps itself
    so two stacks can start and backfill side by side.
    """

    def __init__(
        self,
        *,
        latency_ms: int,
        workers: int = 2,
        seed: str = "demo",
        threads: int = 16,
        vendor_limits: bool = True,
        nodestash_plan: str = "",
        name: str = "",
    ) -> None:
        self.latency_ms, self.workers, self.seed = latency_ms, workers, seed
        self.threads, self.vendor_limits, self.nodestash_plan = (
            threads,
            vendor_limits,
            nodestash_plan,
        )
        self.name = name or seed
        self.tmp = tempfile.TemporaryDirectory(prefix=f"dealdesk-bench-{self.name}-")
        self.sandbox_port, self.app_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.control = f"{self.sandbox_url}/__sandbox"
        self.url = f"http://127.0.0.1:{self.app_port}"
        self.processes: list[subprocess.Popen] = []
        self.gunicorn: subprocess.Popen | None = None
        self.huey: subprocess.Popen | None = None
        self.notes: list[str] = []
        from cryptography.fernet import Fernet

        self.env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "k" * 60,
            "DEALDESK_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
            "SECURE_HSTS_SECONDS": "0",
            "DATABASE_URL": f"sqlite:///{self.tmp.name}/bench.sqlite3",
            "CACHE_URL": os.environ.get("CACHE_URL", f"filecache://{self.tmp.name}/cache"),
            "HUEY_SQLITE_PATH": f"{self.tmp.name}/huey.sqlite3",
            "STORA_API_URL": f"{self.sandbox_url}/stora",
            "STORA_API_KEY": STORA_TOKEN,
            "NODESTASH_API_URL": f"{self.sandbox_url}/nodestash/v1",
            "NODESTASH_API_KEY": NODESTASH_TOKEN,
            # The client-side budget is what keeps the sync within its share of each vendor
            # limit; page views make no upstream calls, so it never refuses one.
            "DEALDESK_CLIENT_RATE_LIMITS": "true",
            "LOG_LEVEL": "WARNING",
            "AXES_ENABLED": "false",
        }

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        out = open(Path(self.tmp.name) / log, "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        self.processes.append(process)
        return process

    def start_sandbox(self) -> Stack:
        process = self._spawn(
            [
                *(PYTHON, "manage.py", "sandbox", "--port", str(self.sandbox_port)),
                *("--seed", self.seed, "--latency-ms", str(self.latency_ms)),
            ],
            "sandbox.log",
        )
        wait_until_up(f"{self.control}/", timeout=180, process=process)  # large seeds take a while
        for provider in PROVIDERS:
            requests.post(
                f"{self.control}/rate-limit",
                json={"provider": provider, "enabled": self.vendor_limits},
                timeout=5,
            ).raise_for_status()
        if self.nodestash_plan:
            answer = requests.post(
                f"{self.control}/plan",
                json={"provider": "nodestash", "plan": self.nodestash_plan},
                timeout=5,
            )
            if answer.ok:
                self.notes.append(f"nodestash plan: {self.nodestash_plan}")
            else:
                self.notes.append(
                    f"nodestash plan switch unavailable (HTTP {answer.status_code}): the sandbox's "
                    "default plan (Free's 5/s burst, 100,000 a day)"
                )
        return self

    def prepare(self) -> Stack:
        """Database, static files, the bench login; the connections come from the env."""
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User, Group;"
            "from dealdesk.deals.roles import SALES_GROUP, ensure_roles; ensure_roles();"
            f"u = User.objects.create_user({USER!r}, password={PASSWORD!r});"
            "u.groups.add(Group.objects.get(name=SALES_GROUP))",
        )
        return self

    def sync_wait(self) -> dict:
        """``manage.py sync --wait``, one process per connection in parallel (as the worker's
        two threads would run them); each timed, with the upstream calls it made."""
        self.clear_upstream_log()
        started = time.time()
        runs = {
            provider: (
                time.monotonic(),
                subprocess.Popen(
                    [PYTHON, "manage.py", "sync", "--wait", "--connection", provider],
                    cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
            for provider in PROVIDERS
        }  # fmt: skip
        result: dict = {}

        def wait(provider: str, began: float, process: subprocess.Popen) -> None:
            output, _ = process.communicate()
            result[provider] = {"seconds": round(time.monotonic() - began, 1)}
            if process.returncode:
                result[provider]["error"] = output[-2000:]

        waiters = [
            threading.Thread(target=wait, args=(provider, began, process))
            for provider, (began, process) in runs.items()
        ]
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join()
        if failed := {p: r["error"] for p, r in result.items() if "error" in r}:
            raise SystemExit(f"manage.py sync --wait failed: {failed}")
        log = [e for e in self.upstream_requests() if e["started"] >= started]
        for provider in PROVIDERS:
            entries = [e for e in log if e["provider"] == provider]
            result[provider].update(
                calls=len(entries),
                vendor_429=sum(1 for e in entries if e["status"] == 429),
                upstream_span_s=round(
                    max(e["finished"] or e["started"] for e in entries)
                    - min(e["started"] for e in entries),
                    1,
                )
                if entries
                else 0,
            )
        return result

    def start_app(self) -> Stack:
        """gunicorn (DEBUG off, gthread) and the huey consumer, as ``make run`` starts it."""
        self.gunicorn = self._spawn(
            [
                *(PYTHON, "-m", "gunicorn", "dealdesk.wsgi"),
                *("--bind", f"127.0.0.1:{self.app_port}", "--workers", str(self.workers)),
                *("--worker-class", "gthread", "--threads", str(self.threads)),
                # Longer than the longest think time: a client reusing a connection the server
                # closes at that very moment (default 2 s) sees a reset no browser would show.
                *("--keep-alive", "10", "--log-level", "warning"),
            ],
            "gunicorn.log",
        )
        self.huey = self._spawn(
            [
                *(PYTHON, "manage.py", "run_huey", "--workers", "2", "--worker-type", "thread"),
                *("--max-delay", "1", "--quiet"),
            ],
            "huey.log",
        )
        wait_until_up(f"{self.url}/accounts/login/", process=self.gunicorn)
        return self

    def start(self) -> Stack:
        self.start_sandbox().prepare()
        self.backfill = self.sync_wait()
        return self.start_app()

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)  # a paused worker must hear the TERM
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        self.tmp.cleanup()

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = Path(self.tmp.name) / name
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def worker_log_problems(self) -> list[str]:
        """Warnings and errors the sync worker logged (failed syncs, tracebacks)."""
        path = Path(self.tmp.name) / "huey.log"
        if not path.exists():
            return []
        text = path.read_text(errors="replace").splitlines()
        return [line[:200] for line in text if re.search(r"WARNING|ERROR|Traceback", line)]

    @contextlib.contextmanager
    def sync_paused(self):
        """Stop the sync worker (SIGSTOP) so every upstream call logged meanwhile is a view's."""
        assert self.huey is not None
        os.killpg(self.huey.pid, signal.SIGSTOP)
        try:
            time.sleep(self.latency_ms / 1000 + 1.0)  # a call it had in flight is logged by now
            yield
        finally:
            os.killpg(self.huey.pid, signal.SIGCONT)

    def upstream_requests(self) -> list[dict]:
        return requests.get(f"{self.control}/requests", timeout=30).json()["requests"]

    def clear_upstream_log(self) -> None:
        requests.delete(f"{self.control}/requests", timeout=10)

    def mutate(self, provider: str, deal_id: str, changes: dict) -> None:
        requests.post(
            f"{self.control}/deals/{provider}/{quote(deal_id, safe='')}", json=changes, timeout=10
        ).raise_for_status()

    def worker_peak_rss_mb(self, field: str = "VmHWM") -> list[float]:
        """Each gunicorn worker's peak RSS (``VmRSS``: its RSS now)."""
        assert self.gunicorn is not None
        master = self.gunicorn.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [peak for pid in children if (peak := _peak_rss_mb(pid, field)) is not None]

    def sync_worker_peak_rss_mb(self) -> float | None:
        return _peak_rss_mb(str(self.huey.pid)) if self.huey else None


def _peak_rss_mb(pid: str, field: str = "VmHWM") -> float | None:
    with contextlib.suppress(OSError):
        match = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        if match:
            return round(int(match.group(1)) / 1024, 1)
    return None


# --- a logged-in browser stand-in -------------------------------------------------------------


class FormParser(HTMLParser):
    """Collects forms (action, method, inputs) and links from a page or partial."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[str] = []
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "action": attrs.get("action") or attrs.get("hx-post") or "",
                    "hx_post": attrs.get("hx-post"),
                    "hx_get": attrs.get("hx-get"),
                    "fields": {},
                }
            )
        elif tag in ("input", "textarea") and self.forms and attrs.get("name"):
            if attrs.get("type") not in ("submit", "button", "checkbox"):
                self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""
        elif tag == "select" and self.forms and attrs.get("name"):
            self._select = attrs["name"]
            self.forms[-1]["fields"].setdefault(self._select, "")
        elif tag == "option" and self._select and ("selected" in attrs):
            self.forms[-1]["fields"][self._select] = attrs.get("value") or ""
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def parse(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser


DEAL_LINK = re.compile(r"^/deals/(?P<source>[\w-]+)/(?P<id>[\w.~%-]+)/$")


class Client:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self._editor_urls: dict[str, str] = {}

    def login(self) -> None:
        self.session.get(f"{self.base_url}/accounts/login/", timeout=30)
        response = self.session.post(
            f"{self.base_url}/accounts/login/",
            data={
                "username": USER,
                "password": PASSWORD,
                "csrfmiddlewaretoken": self.session.cookies["csrftoken"],
            },
            headers={"Referer": f"{self.base_url}/accounts/login/"},
            # 20 password hashes at once on a loaded 2-core machine can take longer than a page
            # view may; a login is not measured, so it gets the time it needs.
            timeout=180,
        )
        response.raise_for_status()
        if "/accounts/login/" in response.url:
            raise SystemExit("bench login failed")

    def get(self, path: str, *, htmx: bool = False) -> requests.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        return self.session.get(urljoin(self.base_url, path), headers=headers, timeout=30)

    def get_partial(self, path: str) -> requests.Response:
        return self.get(path, htmx=True)

    def deal_paths(self, list_path: str = "/deals/") -> list[str]:
        html = self.get(list_path).text
        return sorted(
            {h.split("?")[0] for h in parse(html).links if DEAL_LINK.match(h.split("?")[0])}
        )

    def name_editor_url(self, detail_path: str) -> str:
        """Where the "Edit Name" button fetches its form (cached: it never changes per deal)."""
        if detail_path not in self._editor_urls:
            forms = parse(self.get(detail_path).text).forms
            trigger = next(f for f in forms if f["fields"].get("edit") == "name" and f["hx_get"])
            self._editor_urls[detail_path] = trigger["hx_get"]
        return self._editor_urls[detail_path]

    def name_form(self, detail_path: str) -> dict:
        """Open the Name editor as the "Edit Name" button does; returns the form to submit."""
        editor = self.get(self.name_editor_url(detail_path), htmx=True).text
        return next(f for f in parse(editor).forms if "name" in f["fields"])

    def save_name(self, detail_path: str, form: dict, new_name: str) -> requests.Response:
        """Press Save: one POST, as the HTMX form sends it."""
        return self.session.post(
            urljoin(self.base_url, form["hx_post"] or form["action"] or detail_path),
            data=dict(form["fields"], name=new_name),
            headers={
                "HX-Request": "true",
                "X-CSRFToken": self.session.cookies["csrftoken"],
                "Referer": self.base_url + detail_path,
            },
            timeout=30,
        )

    def edit_name(self, detail_path: str, new_name: str) -> requests.Response:
        return self.save_name(detail_path, self.name_form(detail_path), new_name)


# --- measurements ---------------------------------------------------------------------------


def timed(action, *args, **kwargs) -> float:
    started = time.perf_counter()
    response = action(*args, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code >= 400:
        raise RuntimeError(f"HTTP {response.status_code} from {response.url}")
    return elapsed


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(samples: list[float], latency_ms: int) -> dict:
    ordered = sorted(samples)
    p95 = percentile(ordered, 0.95)
    median = statistics.median(ordered)
    return {
        "n": len(ordered),
        "median_ms": round(median, 1),
        "p95_ms": round(p95, 1),
        "median_x_L": round(median / latency_ms, 3) if latency_ms else None,
        "p95_x_L": round(p95 / latency_ms, 3) if latency_ms else None,
    }


class Pages:
    """The paths a stack's views are measured on, found from its own list."""

    def __init__(self, client: Client) -> None:
        deals = client.deal_paths()
        self.stora = next(p for p in deals if p.startswith("/deals/stora/"))
        self.nodestash = next(p for p in deals if p.startswith("/deals/nodestash/"))
        self.deals = deals
        html = client.get("/board/").text
        picker = re.search(r'<select id="board-pipeline".*?</select>', html, re.S)
        values = re.findall(r'<option value="([^"]*)"', picker.group(0)) if picker else []
        self.boards = [f"/board/?pipeline={quote(unescape(v), safe='')}" for v in values]


def measure_calls(stack: Stack, client: Client, pages: Pages, repeat: int = 5) -> dict:
    """Upstream calls per view, the sync worker paused so the log holds only the views'."""
    views = {
        "list": ["/deals/", "/deals/?status=open", "/deals/?sort=-value&page=3", "/deals/?q=a"],
        "board": ["/board/", *pages.boards[:3]],
        "detail": [pages.stora, pages.nodestash],
    }
    result = {}
    with stack.sync_paused():
        for kind, paths in views.items():
            stack.clear_upstream_log()
            count = 0
            for i in range(repeat * len(paths)):
                response = client.get(paths[i % len(paths)])
                response.raise_for_status()
                count += 1
            calls = stack.upstream_requests()
            result[kind] = {
                "views": count,
                "upstream_calls": len(calls),
                "per_view": round(len(calls) / count, 3),
                "paths": sorted({c["path"] for c in calls})[:5],
            }
    return result


LATENCY_VIEWS = {
    "list": ("/deals/", False),
    "list_htmx_filter": ("/deals/?status=open", True),
    "list_no_next_step": ("/deals/?no_next_step=1", True),
    "list_search": ("/deals/?q=storage", True),
    "list_page_40": ("/deals/?page=40&sort=name", True),
    "detail": ("DETAIL", False),
    "board": ("/board/", False),
}


def measure_latency(stacks: dict[str, tuple[Stack, Client, Pages]], repeat: int) -> dict:
    """Warm single-user medians; the stacks' requests alternate, so both see the same noise."""
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in stacks}
    for name, (_stack, client, pages) in stacks.items():
        for _ in range(3):  # warm every worker
            for path, htmx in LATENCY_VIEWS.values():
                client.get(pages.stora if path == "DETAIL" else path, htmx=htmx)
        for view in LATENCY_VIEWS:
            samples[name][view] = []
    for i in range(repeat):
        for view, (path, htmx) in LATENCY_VIEWS.items():
            order = list(stacks.items())
            if i % 2:
                order.reverse()
            for name, (_stack, client, pages) in order:
                target = (pages.stora if i % 2 else pages.nodestash) if path == "DETAIL" else path
                samples[name][view].append(timed(client.get, target, htmx=htmx))
    latency = next(iter(stacks.values()))[0].latency_ms
    return {
        name: {view: summary(values, latency) for view, values in by_view.items()}
        for name, by_view in samples.items()
    }


def measure_saves(stack: Stack, client: Client, pages: Pages, repeat: int) -> dict:
    """Time only the Save POST (conflict re-read + PATCH upstream, then the store)."""
    samples = []
    for i in range(repeat):
        form = client.name_form(pages.nodestash)
        samples.append(timed(client.save_name, pages.nodestash, form, f"Bench rename {i}"))
    return summary(samples, stack.latency_ms)


def team_run(stack: Stack, users: int, duration: float, think_s: float) -> dict:
    """``users`` people browse with think time (uniform 0.5–1.5 × ``think_s`` between clicks).

    Reads only: list pages (filters, sorts, pages, search), deal pages and boards. A view is
    "served with its content" when it is a 200 with its rows, its deal or its cards.
    """
    probe = Client(stack.url)
    probe.login()
    pages = Pages(probe)
    deal_pool = set(pages.deals)
    for path in ("/deals/?page=2", "/deals/?status=open", "/deals/?sort=-value"):
        deal_pool.update(probe.deal_paths(path))
    deal_list = sorted(deal_pool)
    lists = [
        "/deals/", "/deals/?status=open", "/deals/?sort=-value", "/deals/?sort=name&page=7",
        "/deals/?page=2", "/deals/?source=stora", "/deals/?source=nodestash&status=won",
        "/deals/?q=storage", "/deals/?stale=1",
    ]  # fmt: skip
    boards = pages.boards or ["/board/"]
    samples: dict[str, list[float]] = {"list": [], "detail": [], "board": []}
    failed: list[str] = []
    lock = threading.Lock()
    # Everyone logs in before the clock starts: 20 password hashes at once are not browsing.
    clients = [Client(stack.url) for _ in range(users)]
    logins = [threading.Thread(target=client.login) for client in clients]
    for thread in logins:
        thread.start()
    for thread in logins:
        thread.join()
    started_wall = time.time()
    stop_at = time.monotonic() + duration

    def user(index: int) -> None:
        rng = random.Random(index)
        client = clients[index]
        time.sleep(rng.uniform(0, think_s))  # people do not click in step
        while time.monotonic() < stop_at:
            roll = rng.random()
            if roll < 0.4:
                kind, path = "list", rng.choice(lists)
            elif roll < 0.85:
                kind, path = "detail", rng.choice(deal_list)
            else:
                kind, path = "board", rng.choice(boards)
            began = time.perf_counter()
            try:
                response = client.get(path, htmx=kind == "list" and rng.random() < 0.5)
                elapsed = (time.perf_counter() - began) * 1000
                ok = response.status_code == 200 and CONTENT[kind] in response.text
                problem = "" if ok else f"{kind} {path}: HTTP {response.status_code}"
            except requests.RequestException as error:
                elapsed, problem = (time.perf_counter() - began) * 1000, f"{kind} {path}: {error}"
            with lock:
                samples[kind].append(elapsed)
                if problem:
                    failed.append(problem[:200])
            time.sleep(think_s * rng.uniform(0.5, 1.5))

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - began
    ended_wall = time.time()
    upstream = [e for e in stack.upstream_requests() if started_wall <= e["started"] <= ended_wall]
    every = [x for values in samples.values() for x in values]
    if not every:
        raise RuntimeError("no view completed in the run")
    result = summary(every, stack.latency_ms)
    result.update(
        users=users,
        think_s=think_s,
        seconds=round(seconds, 1),
        views=len(every),
        views_per_s=round(len(every) / seconds, 2),
        served_with_content=len(every) - len(failed),
        served_pct=round(100 * (len(every) - len(failed)) / max(1, len(every)), 3),
        failures=sorted(set(failed))[:5],
        by_kind={k: summary(v, stack.latency_ms) for k, v in samples.items() if v},
        without_board=summary(samples["list"] + samples["detail"], stack.latency_ms)
        if samples["list"] or samples["detail"]
        else {},
        upstream_calls={p: sum(1 for e in upstream if e["provider"] == p) for p in PROVIDERS},
        vendor_429=sum(1 for e in upstream if e["status"] == 429),
        upstream_window_s=round(ended_wall - started_wall, 1),
    )
    result["upstream_calls_per_min"] = round(
        sum(result["upstream_calls"].values()) * 60 / (ended_wall - started_wall), 2
    )
    return result


def freshness(stack: Stack, samples: int, timeout: float = 60) -> dict:
    """Rename a deal upstream (as another user would), then poll the list until it shows."""
    client = Client(stack.url)
    client.login()
    rng = random.Random(7)
    by_source = {
        p: [m["id"] for path in client.deal_paths(f"/deals/?source={p}&page=2")
            if (m := DEAL_LINK.match(path))]
        for p in PROVIDERS
    }  # fmt: skip
    seconds: list[float] = []
    missed = 0
    for i in range(samples):
        provider = PROVIDERS[i % 2]
        deal_id = by_source[provider][i % len(by_source[provider])]
        token = f"Fresh{uuid.uuid4().hex[:10]}"
        field = "name" if provider == "stora" else "title"
        time.sleep(rng.uniform(0, 5))  # any phase of the 5 s poll
        began = time.monotonic()
        stack.mutate(provider, deal_id, {field: f"Renamed upstream {token}"})
        while True:
            page = client.get(f"/deals/?q={token}", htmx=True).text
            if token in page and CONTENT["list"] in page:
                seconds.append(time.monotonic() - began)
                break
            if time.monotonic() - began > timeout:
                missed += 1
                break
            time.sleep(0.2)
    ordered = sorted(seconds)
    return {
        "samples": samples,
        "seen": len(seconds),
        "missed_after_s": timeout if missed else None,
        "seconds": [round(s, 2) for s in seconds],
        "median_s": round(statistics.median(ordered), 2) if ordered else None,
        "p95_s": round(percentile(ordered, 0.95), 2) if ordered else None,
        "max_s": round(ordered[-1], 2) if ordered else None,
    }


def backfill_floor(backfill: dict, share: float, latency_ms: int, nodestash_burst: int) -> dict:
    """The least time the calls the backfill made can take within the sync's quota share.

    Stora: 60 a minute (and 10 a second) per token; nodestash: its plan's burst per second. A
    sliding window lets the first window's share go at once, so N calls need at least
    (N - share of a window) / rate; and they are sequential, so never less than N × L.
    """
    limits = {"stora": [(60, 60.0), (10, 1.0)], "nodestash": [(nodestash_burst, 1.0)]}
    floor = {}
    for provider, (allowed, window) in ((p, lim[0]) for p, lim in limits.items()):
        calls = backfill[provider]["calls"]
        in_window = allowed * share
        rate = in_window / window
        least = max((calls - in_window) / rate, calls * latency_ms / 1000, 0)
        floor[provider] = {
            "calls": calls,
            "share_rate_per_s": round(rate, 3),
            "limit": f"{allowed}/{'min' if window == 60 else 's'} × {share}",
            "floor_s": round(least, 1),
            "actual_s": backfill[provider]["seconds"],
            "actual_vs_floor": round(backfill[provider]["seconds"] / least, 2) if least else None,
        }
    return floor


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, verdict) for the table and docs/benchmarks.md."""
    out: list[tuple[str, str, str, str]] = []
    latency = report["latency_ms"]
    if "calls" in report:
        for kind in ("list", "board", "detail"):
            c = report["calls"][kind]
            out.append(
                (f"Upstream calls per {kind} view", f"{c['upstream_calls']} in {c['views']} views",
                 "0", verdict(c["upstream_calls"] == 0))
            )  # fmt: skip
    if "latency" in report:
        large, demo = report["latency"]["large"], report["latency"]["demo"]
        for view in ("list", "detail"):
            out.append(
                (f"Warm {view} median, 10,000 deals/source",
                 f"{large[view]['median_ms']} ms = {large[view]['median_x_L']} × L",
                 "≤ 0.25 × L", verdict(large[view]["median_x_L"] <= 0.25))
            )  # fmt: skip
            ratio = report["large_vs_demo"][view]
            out.append(
                (f"{view.capitalize()}: 10,000 ÷ 40 deals/source",
                 f"{ratio} ({large[view]['median_ms']} vs {demo[view]['median_ms']} ms)",
                 "≤ 1.2", verdict(ratio <= 1.2))
            )  # fmt: skip
        out.append(
            ("Board median, 10,000 deals/source",
             f"{large['board']['median_ms']} ms = {large['board']['median_x_L']} × L",
             "≤ 0.5 × L", verdict(large["board"]["median_x_L"] <= 0.5))
        )  # fmt: skip
    if "team" in report:
        t = report["team"]
        out += [
            (f"Team run: {t['users']} users, {t['views']} views in {t['seconds']} s",
             f"{t['served_pct']} % served with content", "≥ 99.9 %",
             verdict(t["served_pct"] >= 99.9)),
            ("Team run: vendor 429s", str(t["vendor_429"]), "0", verdict(t["vendor_429"] == 0)),
            ("Team run: p95", f"{t['p95_ms']} ms = {t['p95_x_L']} × L", "≤ 0.7 × L",
             verdict(t["p95_x_L"] <= 0.7)),
        ]  # fmt: skip
        ratio = report.get("calls_per_min_ratio")
        if ratio is not None:
            one = report["solo"]
            out.append(
                ("Upstream calls/min, 20 users ÷ 1 user",
                 f"{ratio} ({t['upstream_calls_per_min']} vs {one['upstream_calls_per_min']})",
                 "≤ 1.2", verdict(ratio <= 1.2))
            )  # fmt: skip
    if "freshness" in report:
        f = report["freshness"]
        ok = f["p95_s"] is not None and f["p95_s"] <= 15 and f["seen"] == f["samples"]
        out.append(
            ("Upstream change visible in the list",
             f"p95 {f['p95_s']} s, median {f['median_s']} s ({f['seen']}/{f['samples']})",
             "p95 ≤ 15 s", verdict(ok))
        )  # fmt: skip
    if "live" in report:
        out += live_rows(report["live"])
    for provider, b in report.get("backfill_floor", {}).items():
        out.append(
            (f"Backfill 10,000 deals, {provider}",
             f"{b['actual_s']} s for {b['calls']} calls; floor {b['floor_s']} s "
             f"({b['limit']}) → {b['actual_vs_floor']} × floor", "report", "")
        )  # fmt: skip
    if "save" in report:
        s = report["save"]
        out.append(("Save of Name (nodestash, upstream)",
                    f"{s['median_ms']} ms = {s['median_x_L']} × L", "—", ""))  # fmt: skip
    out += filter_rows(report)
    rss = report.get("peak_rss_mb_per_worker")
    if rss:
        out.append(("Peak RSS per gunicorn worker", f"{', '.join(map(str, rss))} MB",
                    "≤ 120 MB", verdict(max(rss) <= 120)))  # fmt: skip
    del latency
    return out


def live_rows(live: dict) -> list[tuple[str, str, str, str]]:
    out = []
    update = live.get("update", {})
    for mode, by_source in update.items():
        if not isinstance(by_source, dict):
            continue
        for provider, u in by_source.items():
            webhook = "webhook on" if mode == "webhooks_on" else "polling only"
            target, ok = ("p95 ≤ 3 s", u["p95_s"] is not None and u["p95_s"] <= 3) if (
                mode == "webhooks_on") else ("p95 ≤ poll + 3 s", None)  # fmt: skip
            if mode != "webhooks_on" and u["p95_s"] is not None:
                ok = u["p95_s"] <= 5 + 3  # the sync's 5 s active poll, then the page's check
            out.append(
                (f"Upstream change → open deal page, {provider} ({webhook})",
                 f"p95 {u['p95_s']} s, median {u['median_s']} s ({u['seen']}/{u['samples']})",
                 target, verdict(ok and u["seen"] == u["samples"]))
            )  # fmt: skip
    if update:
        out.append(("Open pages reloaded by live updates", str(update.get("reloads")), "0",
                    verdict(update.get("reloads") == 0)))  # fmt: skip
    if idle := live.get("idle"):
        out += [
            (f"{idle['pages']} idle open pages: requests",
             f"{idle['requests_per_s']}/s ({idle['requests_per_page_per_s']}/s per page)",
             "≤ 0.5/s per page",  # one feed check per 2 s; a window's edges add ≤ 1 per page
             verdict(idle["requests_per_page_per_s"] <= 0.5 + 1 / idle["seconds"])),
            (f"{idle['pages']} idle open pages: app server CPU",
             f"{idle['app_cpu_pct_for_the_pages']} % of a core "
             f"({idle['cpu_ms_per_request']} ms per request)", "report", ""),
            (f"{idle['pages']} idle open pages: upstream calls",
             f"{idle['upstream_calls_idle_pages']} vs {idle['upstream_calls_no_pages']} with none",
             "≤ 1.2 × none", verdict(idle["upstream_calls_idle_pages"]
                                     <= 1.2 * idle["upstream_calls_no_pages"] + 2)),
        ]  # fmt: skip
    return out


def print_table(report: dict) -> None:
    print(f"\nDealDesk benchmark — L = {report['latency_ms']} ms, {report['workers']} workers")
    for note in report.get("notes", []):
        print(f"  note: {note}")
    print()
    table = rows(report)
    width = max(len(r[0]) for r in table) if table else 10
    for measure, value, target, ok in table:
        print(f"{measure:{width}}  {value:56}  {target:12} {ok}")
    if "latency" in report:
        print("\nwarm single-user medians (× L), large | demo:")
        for view in LATENCY_VIEWS:
            lg, dm = report["latency"]["large"][view], report["latency"]["demo"][view]
            print(f"  {view:18} {lg['median_ms']:>7} ms {lg['median_x_L']:>6} | "
                  f"{dm['median_ms']:>7} ms {dm['median_x_L']:>6}")  # fmt: skip
    print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--large-seed", default="large", help="large, or N deals per source")
    parser.add_argument("--repeat", type=int, default=30, help="samples per view (latency)")
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--think-s", type=float, default=6.0, help="mean pause between clicks")
    parser.add_argument("--duration", type=float, default=110, help="seconds per team/solo run")
    parser.add_argument("--fresh-samples", type=int, default=10)
    parser.add_argument("--live-samples", type=int, default=10, help="per source and mode")
    parser.add_argument("--idle-pages", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=40)
    parser.add_argument("--share", type=float, default=0.5, help="DEALDESK_SYNC_SHARE")
    parser.add_argument(
        "--nodestash-plan", default="starter", help="sandbox plan to switch to, if it can ('' = no)"
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if unknown := parts - set(PARTS):
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")

    report: dict = {
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "parts": sorted(parts),
        "share": args.share,
        "large_seed": args.large_seed,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    began = time.monotonic()
    common = {"latency_ms": args.latency_ms, "workers": args.workers, "threads": args.threads}
    large = Stack(seed=args.large_seed, name="large", nodestash_plan=args.nodestash_plan, **common)
    large.env["DEALDESK_SYNC_SHARE"] = str(args.share)
    stacks = [large]
    demo = None
    if "latency" in parts:
        demo = Stack(seed="demo", nodestash_plan=args.nodestash_plan, **common)
        demo.env["DEALDESK_SYNC_SHARE"] = str(args.share)
        stacks.append(demo)

    def step(what: str) -> None:
        print(f"[{time.monotonic() - began:6.0f} s] {what}", flush=True)

    def part(name: str, action) -> None:
        """One part; a failing part is reported and the others still run."""
        try:
            action()
        except Exception as error:
            report.setdefault("part_errors", {})[name] = f"{type(error).__name__}: {error}"[:500]
            print(f"part {name} failed: {error}", file=sys.stderr)

    try:
        step("starting the sandboxes (the large seed takes a while)")
        for stack in stacks:
            stack.start_sandbox().prepare()
        report["notes"] = large.notes
        if demo is not None:
            demo.backfill = demo.sync_wait()
        step(f"backfilling the large store: vendor limits on, sync share {args.share}")
        report["backfill"] = large.sync_wait()
        burst = _nodestash_burst(large)
        report["nodestash_burst_per_s"] = burst
        report["backfill_floor"] = backfill_floor(
            report["backfill"], args.share, args.latency_ms, burst
        )
        step("starting gunicorn and the sync worker")
        for stack in stacks:
            stack.start_app()
        clients = {}
        for stack in stacks:
            client = Client(stack.url)
            client.login()
            clients[stack.name] = (stack, client, Pages(client))
        _, client, pages = clients["large"]
        if "calls" in parts:
            step("counting upstream calls per view (sync worker paused)")
            part("calls", lambda: report.update(calls=measure_calls(large, client, pages)))
        if "latency" in parts:
            step("timing warm views, large and demo side by side")
            part("latency", lambda: report.update(latency=measure_latency(clients, args.repeat)))
            if "latency" in report:
                report["large_vs_demo"] = {
                    view: round(
                        report["latency"]["large"][view]["median_ms"]
                        / report["latency"]["demo"][view]["median_ms"],
                        2,
                    )
                    for view in LATENCY_VIEWS
                }
            report["demo_peak_rss_mb_per_worker"] = demo.worker_peak_rss_mb()
            demo.stop()
            stacks.remove(demo)
        if "filters" in parts:
            step("timing each list filter against the plain list")
            part(
                "filters",
                lambda: report.update(filters=measure_filters(large, client, args.repeat)),
            )
        if "save" in parts:
            step("timing Saves")
            part(
                "save", lambda: report.update(save=measure_saves(large, client, pages, args.saves))
            )
        if "team" in parts:
            step(f"team run: {args.users} users for {args.duration:.0f} s")
            part("team", lambda: report.update(
                team=team_run(large, args.users, args.duration, args.think_s)))  # fmt: skip
            step(f"solo run: 1 user for {args.duration:.0f} s")
            part(
                "solo", lambda: report.update(solo=team_run(large, 1, args.duration, args.think_s))
            )
            if "team" in report and report.get("solo", {}).get("upstream_calls_per_min"):
                report["calls_per_min_ratio"] = round(
                    report["team"]["upstream_calls_per_min"]
                    / report["solo"]["upstream_calls_per_min"],
                    2,
                )
        if "freshness" in parts:
            step(f"freshness: {args.fresh_samples} upstream changes")
            part("freshness", lambda: report.update(freshness=freshness(large, args.fresh_samples)))
        if "live" in parts:
            step(f"live: {args.idle_pages} idle open pages for {args.idle_seconds:.0f} s")
            paths = ["/deals/", "/board/", pages.stora, pages.nodestash]
            part("live", lambda: report.setdefault("live", {}).update(
                idle=idle_cost(large, paths, user=USER, password=PASSWORD,
                               pages=args.idle_pages, seconds=args.idle_seconds)))  # fmt: skip
            step(f"live: {args.live_samples} upstream changes per source into an open page")
            part("live-latency", lambda: report.setdefault("live", {}).update(
                update=update_latency(large, {"stora": pages.stora, "nodestash": pages.nodestash},
                                      user=USER, password=PASSWORD,
                                      samples=args.live_samples)))  # fmt: skip
        report["peak_rss_mb_per_worker"] = large.worker_peak_rss_mb()
        report["rss_now_mb_per_worker"] = large.worker_peak_rss_mb("VmRSS")
        report["sync_worker_peak_rss_mb"] = large.sync_worker_peak_rss_mb()
        report["sync_worker_log_problems"] = large.worker_log_problems()[:10]
        log = large.upstream_requests()
        report["vendor_429_whole_run"] = sum(1 for e in log if e["status"] == 429)
        report["upstream_calls_whole_run"] = {
            p: sum(1 for e in log if e["provider"] == p) for p in PROVIDERS
        }
    except BaseException:
        for stack in stacks:
            for name in ("gunicorn.log", "huey.log"):
                if tail := stack.log_tail(name):
                    print(f"--- {stack.name} {name} (tail)\n{tail}", file=sys.stderr)
        raise
    finally:
        for stack in stacks:
            stack.stop()
    report["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["seconds"] = round(time.monotonic() - began, 1)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"whole run {report['seconds']} s; JSON written to {output}")


def _nodestash_burst(stack: Stack) -> int:
    """The burst limit nodestash announces for its plan (one call, before the app starts)."""
    answer = requests.get(
        f"{stack.sandbox_url}/nodestash/v1/pipelines",
        headers={"Authorization": f"Bearer {NODESTASH_TOKEN}"},
        timeout=10,
    )
    return int(answer.headers.get("X-RateLimit-Burst-Limit", 5))


if __name__ == "__main__":
    main()
