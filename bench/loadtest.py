"""Load with faults: 20 users while one source is down and the other rate limiting.

    .venv/bin/python bench/loadtest.py [--users 20] [--duration 30] [--phase both]

Two phases: nodestash down while Stora rate limits (10/s and 60/min per token, so few writes
get through), then Stora down while nodestash rate limits (5/s burst, room for many writes).

Every response must be a page (HTML, never a 500). Every write must either land upstream
exactly once and be shown as saved, or be shown as failed and not land at all: each write is
checked against the sandbox's own request log. Exits non-zero when any check fails.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

import requests
from run import NODESTASH_TOKEN, ROOT, STORA_TOKEN, Client, Stack, parse, summary

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


PHASES = {
    "stora-limited": {"down": "nodestash", "limited": "stora"},
    "nodestash-limited": {"down": "stora", "limited": "nodestash"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30, help="seconds per phase")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--phase", choices=[*PHASES, "both"], default="both")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "loadtest.json"))
    args = parser.parse_args()

    stack = Stack(latency_ms=args.latency_ms, workers=2, seed="demo")
    stack.env["DEALDESK_CLIENT_RATE_LIMITS"] = "true"  # the real client budget, as in production
    stack.start()
    phases = list(PHASES) if args.phase == "both" else [args.phase]
    report: dict = {"users": args.users, "latency_ms": args.latency_ms, "phases": {}}
    try:
        for name in phases:
            report["phases"][name] = run_phase(stack, **PHASES[name], args=args)
    finally:
        stack.stop()
    problems = [p for phase in report["phases"].values() for p in phase["problems"]]
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    for name, phase in report["phases"].items():
        summary = {k: v for k, v in phase.items() if k not in ("problems", "write_problems")}
        print(f"--- {name}: {PHASES[name]['down']} down, {PHASES[name]['limited']} rate limiting")
        print(json.dumps(summary, indent=2))
    for problem in problems[:20]:
        print("PROBLEM:", problem)
    print(f"JSON written to {output}")
    sys.exit(1 if problems else 0)


def run_phase(stack: Stack, *, down: str, limited: str, args) -> dict:
    """One source down, the other rate limiting (its vendor limits on, our budget on)."""
    control = f"{stack.sandbox_url}/__sandbox"
    requests.post(f"{control}/reset", json={}, timeout=10)  # seed data, limits on, no faults
    requests.post(f"{control}/latency", json={"provider": "all", "ms": args.latency_ms}, timeout=5)
    client = Client(stack.url)
    client.login()
    deals: list[str] = []
    for _ in range(20):  # a cold list may itself be rate limited: wait for one with deals
        time.sleep(1)
        deals = [p for p in client.deal_paths() if p.startswith(f"/deals/{limited}/")]
        if deals:
            break
    requests.post(f"{control}/outage", json={"provider": down, "enabled": True}, timeout=5)
    stack.clear_upstream_log()
    report = run_load(stack, deals, args.users, args.duration)
    upstream = stack.upstream_requests()
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
    report["problems"].extend(check_final_names(stack, upstream, limited))
    return report


def run_load(stack: Stack, deals: list[str], users: int, duration: float) -> dict:
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
        own_deal = deals[index % len(deals)]
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
                                "alert": alert_text(response.text) if not shown_saved else "",
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
        "latency": {
            kind: summary(samples, stack.latency_ms) if samples else {"n": 0}
            for kind, samples in timings.items()
        },
        "problems": problems,
        "writes": writes,
    }


def count_statuses(entries) -> dict[str, int]:
    """Upstream answers by status; 0 is a request the sandbox reset unanswered (the outage)."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[str(entry["status"])] = counts.get(str(entry["status"]), 0) + 1
    return dict(sorted(counts.items()))


def alert_text(html: str) -> str:
    """The words of the first role="alert" element: why a write was refused."""
    match = re.search(r'role="alert"[^>]*>(.*?)</(?:div|p|section)>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())[:160] if match else ""


def renamed_to(body) -> str | None:
    """The new name a PATCH body carries: Stora's ``name`` or nodestash's ``title``."""
    return (body.get("name") or body.get("title")) if isinstance(body, dict) else None


def check_final_names(stack: Stack, upstream: list[dict], provider: str) -> list[str]:
    """Each renamed deal, read from the sandbox once the load is over, carries the name of the
    last rename that landed on it: nothing landed that the log does not show."""
    last_landed: dict[str, str] = {}
    for entry in upstream:
        if (
            entry["provider"] == provider
            and entry["method"] == "PATCH"
            and 200 <= entry["status"] < 300
            and renamed_to(entry.get("body"))
        ):
            last_landed[entry["path"]] = renamed_to(entry.get("body"))
    control = f"{stack.sandbox_url}/__sandbox"
    requests.post(f"{control}/rate-limit", json={"provider": provider, "enabled": False}, timeout=5)
    token = STORA_TOKEN if provider == "stora" else NODESTASH_TOKEN
    problems = []
    for path, name in last_landed.items():
        response = requests.get(
            f"{stack.sandbox_url}/{provider}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        body = response.json()
        actual = (
            body["deal"]["name"] if provider == "stora" else body["data"]["attributes"]["title"]
        )
        if actual != name:
            problems.append(f"{path}: sandbox has {actual!r}, the last landed rename was {name!r}")
    return problems


def check_writes(upstream: list[dict], writes: list[dict]) -> dict:
    """A write shown as saved landed exactly once; a write shown as failed did not land."""
    landed: dict[str, int] = {}
    for entry in upstream:
        name = renamed_to(entry.get("body"))
        if entry["method"] == "PATCH" and 200 <= entry["status"] < 300 and name:
            landed[name] = landed.get(name, 0) + 1
    problems = []
    for write in writes:
        count = landed.get(write["name"], 0)
        if write["shown_saved"] and count != 1:
            problems.append(f"{write['name']!r} shown as saved but landed {count} times")
        if not write["shown_saved"] and count != 0:
            problems.append(f"{write['name']!r} shown as failed but landed {count} times")
    saved = sum(1 for w in writes if w["shown_saved"])
    reasons: dict[str, int] = {}
    for write in writes:
        if write["submitted"] and not write["shown_saved"]:
            reasons[write["alert"]] = reasons.get(write["alert"], 0) + 1
    submitted = sum(1 for w in writes if w["submitted"])
    return {
        "writes": len(writes),
        "writes_saved": saved,
        "writes_reported_failed": submitted - saved,
        # The deal page itself answered "rate limited": the form never reached the user.
        "writes_not_offered": len(writes) - submitted,
        "write_failure_reasons": reasons,
        "write_problems": problems,
    }


if __name__ == "__main__":
    main()
