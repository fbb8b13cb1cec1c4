"""Every template is CSP-clean by construction: no inline scripts, event handlers or styles,
no ``hx-on`` (htmx evaluates it as code) and no ``javascript:`` URLs. Behaviour lives in
static/js/, style in static/css/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    [*ROOT.joinpath("templates").rglob("*.html"), *ROOT.joinpath("dealdesk").rglob("*.html")]
)
FORBIDDEN = {
    "an inline event handler (on...=)": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I | re.S),
    "an inline <script> (without src)": re.compile(r"<script(?![^>]*\ssrc\s*=)[^>]*>", re.I),
    "a style= attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I | re.S),
    "a <style> element": re.compile(r"<style[\s>]", re.I),
    "hx-on": re.compile(r"\b(?:data-)?hx-on", re.I),
    "a javascript: URL": re.compile(r"javascript\s*:", re.I),
}


def test_the_scan_finds_the_templates():
    names = {path.name for path in TEMPLATES}
    assert {"base.html", "detail.html", "list.html", "404.html", "500.html"} <= names


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_template_has_no_inline_code_or_style(path: Path):
    source = path.read_text()
    found = [
        f"{what}: {match.group(0)[:80]!r}"
        for what, pattern in FORBIDDEN.items()
        for match in pattern.finditer(source)
    ]
    assert not found, found


@pytest.mark.parametrize(
    "snippet",
    [
        '<button onclick="go()">',
        "<script>alert(1)</script>",
        '<div style="color: red">',
        "<style>p {}</style>",
        '<form hx-on::after-request="x()">',
        '<a href="javascript:void(0)">',
    ],
)
def test_the_scan_catches_each_kind(snippet: str):
    assert any(pattern.search(snippet) for pattern in FORBIDDEN.values())


def test_the_scan_allows_the_usual_markup():
    fine = (
        '<script src="/static/js/dealdesk.js" defer></script>'
        '<button data-focus-return hx-post="/x" hx-target="#deal-state">Save</button>'
        '<option value="1">Won</option><input name="stage">'
    )
    assert not any(pattern.search(fine) for pattern in FORBIDDEN.values())
