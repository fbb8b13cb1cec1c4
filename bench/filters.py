"""The list's sharper filters against the plain list, over 10,000 deals per source.

Part ``filters`` of ``bench/run.py`` (on its large stack), or on its own, quicker: a large stack
with the vendors' rate limits and DealDesk's budget off, so the backfill is not the wait::

    .venv/bin/python bench/filters.py [--repeat 30] [--large-seed large]

Each sample is one list request as the filter form sends it (an htmx partial of the first page:
count, totals, the page's rows), with the sync worker paused so its polls add no noise. The
paths are timed round-robin, plain list included, so every path sees the same machine; each
filter is reported as its median over the plain list's median. Target: no filter more than
1.2 × the plain list. The CSV export of the whole list is timed too (reported, no target).
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import sys
import time
from html import unescape
from urllib.parse import quote

TARGET_RATIO = 1.2
EXPORT_SAMPLES = 3


def filter_paths(client) -> dict[str, str]:
    """Each filter's list path, with values read from the large stack's own list page."""
    html = client.get("/deals/").text
    owners = re.findall(r'<option value="([a-z0-9_-]+:[^"]+)"', html)
    tags = ("renewal", "enterprise", "pilot")
    today = dt.date.today()
    paths = {
        "plain list": "/deals/",
        "My deals": "/deals/?owner=me",
        "one owner": f"/deals/?owner={quote(unescape(owners[0]), safe=':')}" if owners else "",
        "value range": "/deals/?value_min=1000&value_max=50000",
        "value range, EUR": "/deals/?value_min=1000&currency=EUR",
        "close date range": (
            f"/deals/?close_from={today - dt.timedelta(days=30)}"
            f"&close_to={today + dt.timedelta(days=60)}"
        ),
        "closing this month": "/deals/?closing=month",
        "no next step": "/deals/?no_next_step=1",
        "tag": f"/deals/?tags={tags[0]}",
        "sort by close": "/deals/?sort=close",
        "sort by close, latest": "/deals/?sort=-close",
        "all of them, open": (
            f"/deals/?status=open&value_min=1000&closing=month&tags={tags[0]}&sort=close"
        ),
    }
    return {name: path for name, path in paths.items() if path}


def link_bench_user(stack) -> None:
    """Link the bench login to the first staff member of each source that has staff, so
    "My deals" matches real deals."""
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User;"
        "from dealdesk.listtools.models import OwnerLink;"
        "from dealdesk.sync.models import ReferenceItem;"
        "user = User.objects.get(username='bench');"
        "[OwnerLink.objects.get_or_create(user=user, connection_id=r.connection_id,"
        " defaults={'owner_id': r.upstream_id, 'owner_name': r.name})"
        " for r in ReferenceItem.objects.filter(kind='staff').order_by('connection_id', 'order')]",
    )


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples), 1)


def measure_filters(stack, client, repeat: int = 30) -> dict:
    link_bench_user(stack)
    paths = filter_paths(client)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    counts: dict[str, str] = {}
    with stack.sync_paused():
        for path in paths.values():  # warm every path on every worker
            for _ in range(2):
                client.get(path, htmx=True).raise_for_status()
        names = list(paths)
        for i in range(repeat):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                response = client.get(paths[name], htmx=True)
                samples[name].append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                found = re.search(r"of ([\d,]+)</p>", response.text)
                counts[name] = found.group(1) if found else "0"
        export_ms = []
        export_rows = 0
        for _ in range(EXPORT_SAMPLES):
            started = time.perf_counter()
            response = client.get("/deals/export.csv")
            response.raise_for_status()
            export_rows = response.text.count("\n") - 1
            export_ms.append((time.perf_counter() - started) * 1000)
    plain = _median_ms(samples["plain list"])
    return {
        "repeat": repeat,
        "plain_median_ms": plain,
        "filters": {
            name: {
                "path": paths[name],
                "matching": counts.get(name, ""),
                "median_ms": _median_ms(values),
                "ratio": round(_median_ms(values) / plain, 2) if plain else None,
            }
            for name, values in samples.items()
            if name != "plain list"
        },
        "export_all": {"rows": export_rows, "median_ms": _median_ms(export_ms)},
    }


def filter_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, verdict) rows for run.py's table."""
    result = report.get("filters")
    if not result:
        return []
    out = []
    for name, figures in result["filters"].items():
        ok = figures["ratio"] is not None and figures["ratio"] <= TARGET_RATIO
        out.append(
            (f"List filter ÷ plain list: {name}",
             f"{figures['ratio']} ({figures['median_ms']} vs {result['plain_median_ms']} ms, "
             f"{figures['matching']} deals)", f"≤ {TARGET_RATIO}", "met" if ok else "MISSED")
        )  # fmt: skip
    export = result["export_all"]
    out.append(
        ("CSV export of the whole list", f"{export['median_ms']} ms for {export['rows']} rows",
         "report", "")
    )  # fmt: skip
    return out


def main() -> None:
    import argparse
    import json
    from pathlib import Path

    from run import ROOT, Client, Stack  # bench/run.py

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--large-seed", default="large")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "filters.json"))
    args = parser.parse_args()
    stack = Stack(seed=args.large_seed, name="filters", latency_ms=0, vendor_limits=False)
    stack.env["DEALDESK_CLIENT_RATE_LIMITS"] = "false"
    stack.env["DEALDESK_SYNC_SHARE"] = "1"
    try:
        print("starting a large stack and filling its store…", flush=True)
        stack.start()
        client = Client(stack.url)
        client.login()
        report = {"filters": measure_filters(stack, client, args.repeat)}
    finally:
        stack.stop()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    for measure, value, target, verdict in filter_rows(report):
        print(f"{measure:48} {value:48} {target:8} {verdict}")


if __name__ == "__main__":
    sys.exit(main())
