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
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

import requests
from run import ROOT, STORA_TOKEN, Client, Stack, parse

ALERT = 'role="alert"'


def edit_name(client: Client, detail_path: str, new_name: str) -> requests.Response:
    """Open the Name editor and save it, as a user does. When the deal cannot even be loaded
    (its source rate limiting us) there is no form to submit: that page is the answer."""
    editor = client.get(f"{detail_path}?edit=name")
    form = next((f for f in parse(editor.text).forms if "name" in f["fields"]), None)
    if form is None:
        return editor
    fields = dict(form["fields"], name=new_name)
    return client.session.post(
        urljoin(client.base_url, form["hx_post"] or form["action"]),
        data=fields,
        headers={
            "HX-Request": "true",
            "X-CSRFToken": client.session.cookies["csrftoken"],
            "Referer": client.base_url + detail_path,
        },
        timeout=30,
    )


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
        upstream_before = len(stack.upstream_requests())
        report = run_load(stack, stora_deals, args.users, args.duration)
        upstream = stack.upstream_requests()[upstream_before:]
        report["upstream_requests"] = {
            provider: sum(1 for entry in upstream if entry["provider"] == provider)
            for provider in ("stora", "nodestash")
        }
        report["upstream_statuses"] = {
            provider: count_statuses(e for e in upstream if e["provider"] == provider)
            for provider in ("stora", "nodestash")
        }
        report["upstream_requests_per_user_action"] = round(
            len(upstream) / max(1, report["requests"]), 2
        )
        report.update(check_writes(upstream, report.pop("writes")))
        report["problems"].extend(report["write_problems"])
        report["problems"].extend(check_final_names(stack, upstream))
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
    timings: dict[str, list[float]] = {"list": [], "detail": [], "write": []}
    lock = threading.Lock()
    started = time.monotonic()
    stop_at = started + duration

    def user(index: int) -> None:
        rng = random.Random(index)
        client = Client(stack.url)
        client.login()
        own_deal = stora_deals[index % len(stora_deals)]
        counter = 0
        while time.monotonic() < stop_at:
            roll = rng.random()
            began = time.perf_counter()
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
                    response = edit_name(client, own_deal, new_name)
                    kind = "write"
                    shown_saved = response.status_code == 200 and ALERT not in response.text
                    if response.request.method == "POST" and ALERT not in response.text:
                        shown_saved = shown_saved and 'id="deal-title"' in response.text
                    with lock:
                        writes.append(
                            {
                                "name": new_name,
                                "shown_saved": shown_saved,
                                "submitted": response.request.method == "POST",
                            }
                        )
            except Exception as error:
                with lock:
                    problems.append(f"user {index}: {type(error).__name__}: {error}"[:300])
                continue
            with lock:
                timings[kind].append((time.perf_counter() - began) * 1000)
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
    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    return {
        "users": users,
        "seconds": round(elapsed, 1),
        "requests": total,
        "throughput_rps": round(total / elapsed, 1),
        "statuses": dict(sorted(statuses.items())),
        "latency_ms": {kind: percentiles(samples) for kind, samples in timings.items()},
        "problems": problems,
        "writes": writes,
    }


def count_statuses(entries) -> dict[str, int]:
    """Upstream answers by status; 0 is a request the sandbox reset unanswered (the outage)."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[str(entry["status"])] = counts.get(str(entry["status"]), 0) + 1
    return dict(sorted(counts.items()))


def check_final_names(stack: Stack, upstream: list[dict]) -> list[str]:
    """Each renamed deal, read from the sandbox once the load is over, carries the name of the
    last rename that landed on it: nothing landed that the log does not show."""
    last_landed: dict[str, str] = {}
    for entry in upstream:
        body = entry.get("body")
        if entry["method"] == "PATCH" and 200 <= entry["status"] < 300 and isinstance(body, dict):
            last_landed[entry["path"]] = body.get("name")
    control = f"{stack.sandbox_url}/__sandbox"
    requests.post(f"{control}/rate-limit", json={"provider": "stora", "enabled": False}, timeout=5)
    problems = []
    for path, name in last_landed.items():
        response = requests.get(
            f"{stack.sandbox_url}/stora{path}",
            headers={"Authorization": f"Bearer {STORA_TOKEN}"},
            timeout=10,
        )
        actual = response.json()["deal"]["name"]
        if actual != name:
            problems.append(f"{path}: sandbox has {actual!r}, the last landed rename was {name!r}")
    return problems


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "median": round(statistics.median(ordered)), "p95": round(p95)}


def check_writes(upstream: list[dict], writes: list[dict]) -> dict:
    """A write shown as saved landed exactly once; a write shown as failed did not land."""
    landed: dict[str, int] = {}
    for entry in upstream:
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
    submitted = sum(1 for w in writes if w["submitted"])
    return {
        "writes": len(writes),
        "writes_saved": saved,
        "writes_reported_failed": submitted - saved,
        # The deal page itself answered "rate limited": the form never reached the user.
        "writes_not_offered": len(writes) - submitted,
        "write_problems": problems,
    }


if __name__ == "__main__":
    main()
