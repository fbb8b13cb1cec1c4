"""DealDesk benchmark: the app under gunicorn against the sandbox with injected latency L.

    .venv/bin/python bench/run.py [--latency-ms 150] [--workers 2] [--repeat 30] [--duration 60]

Prints a table and writes bench/results/latest.json. Latencies are given in ms and as ratios
to L: absolute times on a shared machine are noisy, ratios are not. See docs/benchmarks.md.
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
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import requests

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
USER, PASSWORD = "bench", "bench-password-1"
STORA_TOKEN, NODESTASH_TOKEN = "sandbox-stora-token", "nds_test_sandbox"


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            requests.get(url, timeout=1, allow_redirects=False)
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up in {timeout} s")


class Stack:
    """A sandbox process and a gunicorn-served DealDesk pointed at it."""

    def __init__(self, *, latency_ms: int, workers: int, seed: str, threads: int = 16) -> None:
        self.latency_ms, self.workers, self.seed = latency_ms, workers, seed
        self.threads = threads
        self.tmp = tempfile.TemporaryDirectory(prefix="dealdesk-bench-")
        self.sandbox_port, self.app_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.url = f"http://127.0.0.1:{self.app_port}"
        self.processes: list[subprocess.Popen] = []
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
            "STORA_API_URL": f"{self.sandbox_url}/stora",
            "STORA_API_KEY": STORA_TOKEN,
            "NODESTASH_API_URL": f"{self.sandbox_url}/nodestash/v1",
            "NODESTASH_API_KEY": NODESTASH_TOKEN,
            # The sandbox's own vendor limits are switched off below; so is our client budget,
            # which models one token's plan and is not what this benchmark measures.
            "DEALDESK_CLIENT_RATE_LIMITS": "false",
            "LOG_LEVEL": "WARNING",
            "AXES_ENABLED": "false",
        }

    def manage(self, *args: str) -> None:
        subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True
        )

    def start(self) -> Stack:
        self.processes.append(
            subprocess.Popen(
                [
                    *(PYTHON, "manage.py", "sandbox", "--port", str(self.sandbox_port)),
                    *("--seed", self.seed, "--latency-ms", str(self.latency_ms)),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        wait_until_up(f"{self.sandbox_url}/__sandbox/")
        for provider in ("stora", "nodestash"):
            requests.post(
                f"{self.sandbox_url}/__sandbox/rate-limit",
                json={"provider": provider, "enabled": False},
                timeout=5,
            )
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
        self.processes.append(
            subprocess.Popen(
                [
                    *(PYTHON, "-m", "gunicorn", "dealdesk.wsgi"),
                    *("--bind", f"127.0.0.1:{self.app_port}", "--workers", str(self.workers)),
                    *("--worker-class", "gthread", "--threads", str(self.threads)),
                    *("--log-level", "warning"),
                ],
                cwd=ROOT,
                env=self.env,
                start_new_session=True,
            )
        )
        wait_until_up(f"{self.url}/accounts/login/")
        return self

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.tmp.cleanup()

    def upstream_requests(self) -> list[dict]:
        return requests.get(f"{self.sandbox_url}/__sandbox/requests", timeout=10).json()["requests"]

    def clear_upstream_log(self) -> None:
        requests.delete(f"{self.sandbox_url}/__sandbox/requests", timeout=10)

    def worker_peak_rss_mb(self) -> list[float]:
        master = self.processes[-1].pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        peaks = []
        for pid in children:
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                peaks.append(int(match.group(1)) / 1024)
        return peaks


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
            timeout=30,
        )
        response.raise_for_status()
        if "/accounts/login/" in response.url:
            raise SystemExit("bench login failed")

    def get(self, path: str, *, htmx: bool = False) -> requests.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        return self.session.get(urljoin(self.base_url, path), headers=headers, timeout=30)

    def get_partial(self, path: str) -> requests.Response:
        return self.get(path, htmx=True)

    def deal_paths(self) -> list[str]:
        html = self.get("/deals/").text
        return sorted(
            {h.split("?")[0] for h in parse(html).links if re.match(r"^/deals/[\w-]+/[\w-]+/", h)}
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


def summary(samples: list[float], latency_ms: int) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    return {
        "n": len(ordered),
        "median_ms": round(median, 1),
        "p95_ms": round(p95, 1),
        "median_x_L": round(median / latency_ms, 2) if latency_ms else None,
        "p95_x_L": round(p95 / latency_ms, 2) if latency_ms else None,
    }


def count_calls(stack: Stack, action) -> dict[str, int]:
    stack.clear_upstream_log()
    action()
    counts: dict[str, int] = {}
    for entry in stack.upstream_requests():
        counts[entry["provider"]] = counts.get(entry["provider"], 0) + 1
    return counts


def save_samples(client: Client, detail_path: str, repeat: int) -> list[float]:
    """Time only the Save POST; each round opens a fresh editor first, as a user does."""
    samples = []
    for i in range(repeat):
        form = client.name_form(detail_path)
        samples.append(timed(client.save_name, detail_path, form, f"Bench rename {i}"))
    return samples


def measure_single_user(stack: Stack, repeat: int) -> dict:
    client = Client(stack.url)
    client.login()
    deals = client.deal_paths()
    stora = next(p for p in deals if p.startswith("/deals/stora/"))
    for _ in range(3):  # warm every worker's caches
        client.get("/deals/")
        client.get(stora)
    results = {
        "list_full_page": summary(
            [timed(lambda: client.get("/deals/")) for _ in range(repeat)], stack.latency_ms
        ),
        "list_htmx_partial": summary(
            [timed(lambda: client.get("/deals/?status=open", htmx=True)) for _ in range(repeat)],
            stack.latency_ms,
        ),
        "detail_page": summary(
            [timed(lambda: client.get(stora)) for _ in range(repeat)], stack.latency_ms
        ),
        "inline_edit_save_name": summary(save_samples(client, stora, repeat), stack.latency_ms),
        "upstream_calls_warm_list": count_calls(stack, lambda: client.get("/deals/")),
        "upstream_calls_warm_detail": count_calls(stack, lambda: client.get(stora)),
    }
    return results


def measure_list_only(stack: Stack, repeat: int) -> dict:
    client = Client(stack.url)
    client.login()
    for _ in range(3):
        client.get("/deals/")
    return summary([timed(lambda: client.get("/deals/")) for _ in range(repeat)], stack.latency_ms)


def measure_concurrent(stack: Stack, users: int, duration: float) -> dict:
    """Users browse and edit with no think time; every HTTP request is one sample.

    Each user renames only its own deal, so a 409 here would be a real error, not two
    benchmark users editing the same deal (which DealDesk rightly refuses).
    """
    samples: dict[str, list[float]] = {"list": [], "detail": [], "editor": [], "save": []}
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    lists = ["/deals/", "/deals/?status=open", "/deals/?sort=name", "/deals/?sort=-value"]

    def record(kind: str, action, *args) -> object:
        started = time.perf_counter()
        response = action(*args)
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            if response.status_code >= 400:
                errors.append(f"{kind}: HTTP {response.status_code} from {response.url}")
            else:
                samples[kind].append(elapsed)
        return response

    def user(index: int) -> None:
        rng = random.Random(index)
        client = Client(stack.url)
        client.login()
        deals = client.deal_paths()
        own_deal = deals[index % len(deals)]
        while time.monotonic() < stop_at:
            roll = rng.random()
            try:
                if roll < 0.45:
                    record("list", client.get, rng.choice(lists))
                elif roll < 0.9:
                    record("detail", client.get, rng.choice(deals))
                else:
                    record("detail", client.get, own_deal)
                    editor = record("editor", client.get_partial, client.name_editor_url(own_deal))
                    form = next(f for f in parse(editor.text).forms if "name" in f["fields"])
                    new_name = f"Load {index} {rng.randint(1, 9999)}"
                    record("save", client.save_name, own_deal, form, new_name)
            except Exception as error:  # counted, not fatal: this is what we measure
                with lock:
                    errors.append(f"{type(error).__name__}: {error}"[:200])

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    every = [x for kind in samples.values() for x in kind]
    result = summary(every, stack.latency_ms) if every else {}
    result.update(
        users=users,
        seconds=round(elapsed, 1),
        requests=len(every) + len(errors),
        throughput_rps=round((len(every) + len(errors)) / elapsed, 1),
        errors=len(errors),
        error_samples=sorted(set(errors))[:5],
        by_kind={k: summary(v, stack.latency_ms) for k, v in samples.items() if v},
    )
    return result


# --- report ---------------------------------------------------------------------------------

TARGETS = {
    "list_full_page": ("median_x_L", 1.3),
    "detail_page": ("median_x_L", 1.3),
    "inline_edit_save_name": ("median_x_L", 2.5),
}


def print_table(report: dict) -> None:
    latency = report["latency_ms"]
    print(f"\nDealDesk benchmark — L = {latency} ms, {report['workers']} gunicorn workers\n")
    print(f"{'measure':34} {'median':>9} {'p95':>9} {'median/L':>9} {'p95/L':>7}  target")
    for name in ("list_full_page", "list_htmx_partial", "detail_page", "inline_edit_save_name"):
        row = report["single_user"][name]
        target = TARGETS.get(name)
        verdict = ""
        if target:
            ok = row[target[0]] <= target[1]
            verdict = f"≤ {target[1]}×L {'met' if ok else 'MISSED'}"
        print(
            f"{name:34} {row['median_ms']:>7} ms {row['p95_ms']:>6} ms {row['median_x_L']:>9} "
            f"{row['p95_x_L']:>7}  {verdict}"
        )
    single = report["single_user"]
    print(
        f"\nupstream calls, warm list:   {single['upstream_calls_warm_list']}"
        "  (target ≤ 1 per source)"
    )
    print(f"upstream calls, warm detail: {single['upstream_calls_warm_detail']}  (target 1)")
    if "large_vs_demo_list_ratio" in report:
        print(f"list, large seed / demo seed: {report['large_vs_demo_list_ratio']}  (target ≤ 1.1)")
    if "concurrent" in report:
        c = report["concurrent"]
        print(
            f"{c['users']} concurrent users for {c['seconds']} s: {c['throughput_rps']} req/s, "
            f"p95 {c.get('p95_ms')} ms ({c.get('p95_x_L')}×L, target ≤ 3×L), errors {c['errors']} "
            "(target 0)"
        )
    print(f"peak RSS per worker: {report['peak_rss_mb_per_worker']} MB (target ≤ 150 MB)\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="gunicorn threads per worker")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-concurrent", action="store_true")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = parser.parse_args()

    report: dict = {
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    stack = Stack(
        latency_ms=args.latency_ms, workers=args.workers, seed="demo", threads=args.threads
    ).start()
    try:
        report["single_user"] = measure_single_user(stack, args.repeat)
        if not args.skip_concurrent:
            report["concurrent"] = measure_concurrent(stack, args.users, args.duration)
        report["peak_rss_mb_per_worker"] = [round(x, 1) for x in stack.worker_peak_rss_mb()]
    finally:
        stack.stop()
    if not args.skip_large:
        large = Stack(
            latency_ms=args.latency_ms, workers=args.workers, seed="large", threads=args.threads
        ).start()
        try:
            large_list = measure_list_only(large, args.repeat)
        finally:
            large.stop()
        report["large_list"] = large_list
        demo_median = report["single_user"]["list_full_page"]["median_ms"]
        report["large_vs_demo_list_ratio"] = round(large_list["median_ms"] / demo_median, 2)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"JSON written to {output}")


if __name__ == "__main__":
    main()
