"""Page parsing for the fault tests (their fixtures are in tests/conftest.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

HTMX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return response.content.decode()


def alerts(html: str) -> list[str]:
    """The text of every element with role="alert", tags stripped."""
    found = []
    for match in re.finditer(r'<(\w+)[^>]*role="alert"[^>]*>(.*?)</\1>', html, re.S):
        found.append(" ".join(re.sub(r"<[^>]+>", " ", match.group(2)).split()))
    return found


class _Forms(HTMLParser):
    """Every form's action, the values a browser would submit, and each select's options. A named
    submit button counts as one more option of its name, for its own form or the one its
    ``form`` attribute names (the deal page's stage bar: one button per stage)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"action": attrs.get("action", ""), "id": attrs.get("id"), "fields": {},
                 "options": {}}
            )  # fmt: skip
            return
        if tag == "button" and attrs.get("name"):
            owner = next(
                (f for f in self.forms if attrs.get("form") and f["id"] == attrs["form"]),
                None if attrs.get("form") else (self.forms[-1] if self.forms else None),
            )
            if owner is not None:
                owner["options"].setdefault(attrs["name"], []).append(attrs.get("value") or "")
            return
        if not self.forms:
            return
        current = self.forms[-1]
        if tag == "option" and self._select:
            value = attrs.get("value") or ""
            current["options"].setdefault(self._select, []).append(value)
            if "selected" in attrs or current["fields"].get(self._select) is None:
                current["fields"][self._select] = value
        elif not attrs.get("name"):
            return
        elif tag == "input" and attrs.get("type") not in ("submit", "button"):
            current["fields"][attrs["name"]] = attrs.get("value") or ""
        elif tag == "select":
            self._select = attrs["name"]
            current["fields"].setdefault(self._select, None)
        elif tag == "textarea":
            self._textarea = attrs["name"]
            current["fields"][self._textarea] = ""

    def handle_data(self, data):
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form(html: str, action: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The fields of the form posting to ``action``, and the options of its selects."""
    parser = _Forms()
    parser.feed(html)
    for found in parser.forms:
        if found["action"] == action:
            return dict(found["fields"]), found["options"]
    raise AssertionError(f"no form posting to {action} on the page")
