"""The ``live`` part of ``make bench``: open pages that follow the store (issue 15).

- ``update_latency``: a deal changes upstream (the sandbox's control API, as another user of the
  vendor's own app would), and a real Chromium page open on that deal shows it without a reload.
  Timed from the upstream change to the new name in the page's heading: the webhook (or the sync
  worker's next poll) stores it, and the page's own 2 s feed check reads it. Measured with
  Stora's webhook off (polling alone, both sources) and then on (Stora).
- ``idle_cost``: 50 open pages (list, board and deal pages, in one real Chromium) left alone for
  a while. What they cost the server: requests per second, the app server's CPU (gunicorn, all
  workers) against the same window with no page open, and upstream calls (there must be none
  beyond the sync worker's own).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


def _app_pids(stack) -> list[int]:
    master = stack.gunicorn.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _browser(playwright, stack, user: str, password: str):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{stack.url}/accounts/login/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return browser, context, page


def _register_webhook(stack) -> None:
    stack.manage(
        "shell",
        "-c",
        "from dealdesk.connections.models import Connection;"
        "from dealdesk.sync.webhooks import webhook_register;"
        f"webhook_register(Connection.objects.get(provider='stora'), base_url={stack.url!r})",
    )


def _summary(seconds: list[float], missed: int, latency_ms: int) -> dict:
    ordered = sorted(seconds)
    return {
        "samples": len(seconds) + missed,
        "seen": len(seconds),
        "seconds": [round(s, 2) for s in seconds],
        "median_s": round(statistics.median(ordered), 2) if ordered else None,
        "p95_s": round(_percentile(ordered, 0.95), 2) if ordered else None,
        "max_s": round(ordered[-1], 2) if ordered else None,
        "p95_x_L": round(_percentile(ordered, 0.95) * 1000 / latency_ms, 1) if ordered else None,
    }


def update_latency(stack, deal_paths: dict[str, str], *, user: str, password: str, samples: int,
                   timeout: float = 60) -> dict:  # fmt: skip
    """Upstream change → open deal page, p95; webhooks off (both sources), then on (Stora)."""
    from playwright.sync_api import sync_playwright

    result: dict = {}
    with sync_playwright() as playwright:
        browser, context, _ = _browser(playwright, stack, user, password)
        pages = {}
        for provider, path in deal_paths.items():
            page = context.new_page()
            page.goto(stack.url + path)
            page.wait_for_selector("#deal-title")
            pages[provider] = page

        def run(providers: list[str]) -> dict:
            seconds: dict[str, list[float]] = {p: [] for p in providers}
            missed = dict.fromkeys(providers, 0)
            for i in range(samples * len(providers)):
                provider = providers[i % len(providers)]
                page, deal_id = pages[provider], deal_paths[provider].rstrip("/").split("/")[-1]
                token = f"Live{uuid.uuid4().hex[:10]}"
                field = "name" if provider == "stora" else "title"
                time.sleep(0.5 + (i % 5) * 0.45)  # land in every phase of the 2 s page check
                began = time.monotonic()
                stack.mutate(provider, deal_id, {field: f"Changed upstream {token}"})
                try:
                    page.wait_for_function(
                        "t => (document.getElementById('deal-title') || {}).textContent"
                        "?.includes(t)",
                        arg=token,
                        timeout=timeout * 1000,
                        polling=50,
                    )
                    seconds[provider].append(time.monotonic() - began)
                except Exception:
                    missed[provider] += 1
                assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
            return {p: _summary(seconds[p], missed[p], stack.latency_ms) for p in providers}

        result["webhooks_off"] = run(list(deal_paths))
        _register_webhook(stack)
        result["webhooks_on"] = run(["stora"])
        reloads = [p.evaluate("performance.getEntriesByType('navigation')[0].type") for p in
                   pages.values()]  # fmt: skip
        result["reloads"] = sum(1 for r in reloads if r == "reload")
        browser.close()
    return result


def idle_cost(stack, paths: list[str], *, user: str, password: str, pages: int = 50,
              seconds: float = 40) -> dict:  # fmt: skip
    """The server's cost of ``pages`` open, idle pages, against the same window with none."""
    from playwright.sync_api import sync_playwright

    app = _app_pids(stack)

    def window(sleep=time.sleep) -> dict:
        stack.clear_upstream_log()
        cpu, began = _cpu_seconds(app), time.monotonic()
        sleep(seconds)
        wall = time.monotonic() - began
        calls = len(stack.upstream_requests())
        return {"cpu_s": _cpu_seconds(app) - cpu, "wall_s": wall, "upstream_calls": calls}

    baseline = window()
    with sync_playwright() as playwright:
        browser, context, _ = _browser(playwright, stack, user, password)
        requests_seen: list[str] = []
        context.on("request", lambda request: requests_seen.append(request.url))
        opened = []
        for i in range(pages):
            page = context.new_page()
            page.goto(stack.url + paths[i % len(paths)])
            opened.append(page)
        # Playwright hands events over only while it runs a call: wait through one of its own.
        opened[0].wait_for_timeout(3_000)  # every page's first feed check is under way
        requests_seen.clear()
        loaded = window(lambda s: opened[0].wait_for_timeout(s * 1000))
        requests_seen = requests_seen[:]  # what arrived within the window
        feed = [u for u in requests_seen if "/live/changes/" in u]
        browser.close()
    extra_cpu = max(loaded["cpu_s"] - baseline["cpu_s"], 0.0)
    return {
        "pages": pages,
        "seconds": round(loaded["wall_s"], 1),
        "requests": len(requests_seen),
        "feed_requests": len(feed),
        "by_path": dict(Counter(u.split("?")[0].removeprefix(stack.url) for u in requests_seen)),
        "requests_per_s": round(len(requests_seen) / loaded["wall_s"], 2),
        "requests_per_page_per_s": round(len(requests_seen) / loaded["wall_s"] / pages, 3),
        "app_cpu_pct_idle_pages": round(100 * loaded["cpu_s"] / loaded["wall_s"], 1),
        "app_cpu_pct_no_pages": round(100 * baseline["cpu_s"] / baseline["wall_s"], 1),
        "app_cpu_pct_for_the_pages": round(100 * extra_cpu / loaded["wall_s"], 1),
        "cpu_ms_per_request": round(1000 * extra_cpu / len(requests_seen), 2)
        if requests_seen
        else None,
        "upstream_calls_idle_pages": loaded["upstream_calls"],
        "upstream_calls_no_pages": baseline["upstream_calls"],
    }
