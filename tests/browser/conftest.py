"""Browser journeys: Playwright drives Debian's Chromium against a live DealDesk on the sandbox."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from dealdesk.connections.models import Connection, Origin
from dealdesk.deals.roles import SALES_GROUP, VIEWERS_GROUP
from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN
from tests.conftest import make_user, sync_store

# Playwright's sync API runs an event loop in this thread; the ORM calls in fixtures are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "journey-password-1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 860}}


@dataclass
class App:
    url: str
    sandbox: object
    page: object

    def login(self, username: str = "sales") -> None:
        self.page.goto(f"{self.url}/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        self.page.get_by_role("heading", name="Deals").wait_for()

    def open_deal(self, source: str, status: str = "open", name: str | None = None) -> str:
        """Open a deal from the list filtered to ``source`` and ``status`` (the first row, or the
        row named ``name``); returns the deal's id from the detail page's URL."""
        self.page.goto(f"{self.url}/deals/?source={source}&status={status}")
        names = self.page.get_by_role("table").locator("tbody td[data-label=Name]")
        links = (
            names.get_by_role("link", name=name, exact=True) if name else names.get_by_role("link")
        )
        link = links.first
        title = link.inner_text()
        link.click()
        self.page.get_by_role("heading", level=1, name=title, exact=True).wait_for()
        match = re.search(rf"/deals/{source}/([^/?]+)/", self.page.url)
        assert match, self.page.url
        return match.group(1)

    def writes(self, provider: str) -> list:
        """What ``provider`` received other than reads, oldest first."""
        return [r for r in self.sandbox.requests(provider) if r.method != "GET"]

    def mark_page(self) -> None:
        """Tag this page's window, so ``assert_no_reload`` can tell a swap from a navigation."""
        self.page.evaluate("window.__marker = 1")

    def assert_no_reload(self) -> None:
        assert self.page.evaluate("window.__marker") == 1, "the page was reloaded"

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / name, full_page=True, animations="disabled")


@pytest.fixture
def app(live_server, sandbox_server, sandbox, page, transactional_db, settings) -> App:
    """A live DealDesk wired to the sandbox, with a Sales user ``sales`` and a viewer.

    Neither side's rate limit is under test in a journey: both are off, so a page's fan-out
    never waits on a budget.
    """
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    sandbox.set_rate_limiting("all", False)
    for slug, label, url, token in (
        ("stora", "Stora", sandbox_server.stora_url, DEFAULT_STORA_TOKEN),
        ("nodestash", "nodestash", sandbox_server.nodestash_url, DEFAULT_NODESTASH_TOKEN),
    ):
        connection = Connection(
            provider=slug, label=label, slug=slug, base_url=url, origin=Origin.SANDBOX
        )
        connection.set_api_key(token)
        connection.save()
    sync_store()  # the background worker's first sync, done here before the journey starts
    sandbox.clear_log()
    make_user("sales", SALES_GROUP, password=PASSWORD)
    make_user("viewer", VIEWERS_GROUP, password=PASSWORD)
    page.set_default_timeout(10_000)
    return App(url=live_server.url, sandbox=sandbox, page=page)
