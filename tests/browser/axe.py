"""The axe-core scan the browser journeys run on every screen and state (axe-playwright-python
ships axe-core; it runs in the page through Playwright, so the CSP does not stand in its way)."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe

_AXE = Axe()


def assert_accessible(page, state: str) -> None:
    """No axe violation on the page as it is now; ``state`` names it in the failure."""
    results = _AXE.run(page)
    violations = results.response["violations"]
    report = [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5])
        for v in violations
    ]
    assert not violations, f"axe on {state}:\n" + "\n".join(report)
