"""Load with faults: 20 users while nodestash is down and Stora is rate limiting.

    .venv/bin/python bench/loadtest.py [--users 20] [--duration 30]

Every response must be a page (HTML, never a 500). Every write must either land upstream
exactly once and be shown as saved, or be shown as failed and not land at all: each write is
checked against the sandbox's own request log. Exits non-zero when any check fails.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

import requests
from run import ROOT, Client, Stack

ALERT = 'role="alert"'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "loadtest.json"))
    args = parser.parse_args()

    stack = Stack(latency_ms=args.latency_ms, workers=2, seed="demo")
    stack.env["DEALDESK_CLIENT_RATE_LIMITS"] = "true"  # the real client budget, as in production
    stack.start()
    try:
        client = Client(stack.url)
        client.login()
        stora_deals = [p for p in client.deal_paths() if p.startswith("/deals/stora/")]
        control = f"{stack.sandbox_url}/__sandbox"
        requests.post(
            f"{control}/outage", json={"provider": "nodestash", "enabled": True}, timeout=5
        )
        requests.post(
            f"{control}/rate-limit", json={"provider": "stora", "enabled": True}, timeout=5
        )
        stack.clear_upstream_log()
        report = run_load(stack, stora_deals, args.users, args.duration)
        report.update(check_writes(stack, report.pop("writes")))
        report["problems"].extend(report["write_problems"])
    finally:
        stack.stop()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "problems"}, indent=2))
    for problem in report["problems"][:20]:
        print("PROBLEM:", problem)
    print(f"JSON written to {output}")
    sys.exit(1 if report["problems"] else 0)


def run_load(stack: Stack, stora_deals: list[str], users: int, duration: float) -> dict:
    statuses: dict[int, int] = {}
    problems: list[str] = []
    writes: list[dict] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def user(index: int) -> None:
        rng = random.Random(index)
        client = Client(stack.url)
        client.login()
        own_deal = stora_deals[index % len(stora_deals)]
        counter = 0
        while time.monotonic() < stop_at:
            roll = rng.random()
            try:
                if roll < 0.4:
                    response = client.get(rng.choice(["/deals/", "/deals/?status=open"]))
                    kind = "list"
                elif roll < 0.75:
                    response = client.get(own_deal)
                    kind = "detail"
                else:
                    counter += 1
                    new_name = f"Load u{index} #{counter}"
                    response = client.edit_name(own_deal, new_name)
                    kind = "write"
                    shown_saved = response.status_code == 200 and ALERT not in response.text
                    with lock:
                        writes.append({"name": new_name, "shown_saved": shown_saved})
            except Exception as error:
                with lock:
                    problems.append(f"user {index}: {type(error).__name__}: {error}"[:300])
                continue
            with lock:
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code >= 500 and ALERT not in response.text:
                    problems.append(
                        f"{kind} {response.url} -> {response.status_code} without alert"
                    )
                if response.status_code == 500:
                    problems.append(f"{kind} {response.url} -> 500")
                if "text/html" not in response.headers.get("Content-Type", ""):
                    problems.append(f"{kind} {response.url} -> not a page")

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"statuses": statuses, "problems": problems, "writes": writes}


def check_writes(stack: Stack, writes: list[dict]) -> dict:
    """A write shown as saved landed exactly once; a write shown as failed did not land."""
    landed: dict[str, int] = {}
    for entry in stack.upstream_requests():
        body = entry.get("body")
        if entry["method"] == "PATCH" and 200 <= entry["status"] < 300 and isinstance(body, dict):
            landed[body.get("name")] = landed.get(body.get("name"), 0) + 1
    problems = []
    for write in writes:
        count = landed.get(write["name"], 0)
        if write["shown_saved"] and count != 1:
            problems.append(f"{write['name']!r} shown as saved but landed {count} times")
        if not write["shown_saved"] and count != 0:
            problems.append(f"{write['name']!r} shown as failed but landed {count} times")
    saved = sum(1 for w in writes if w["shown_saved"])
    return {
        "writes": len(writes),
        "writes_saved": saved,
        "writes_reported_failed": len(writes) - saved,
        "write_problems": problems,
    }


if __name__ == "__main__":
    main()
