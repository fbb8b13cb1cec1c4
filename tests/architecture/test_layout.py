"""The layout rules of STYLE.md hold for dealdesk/ (see ``layout.py`` for what each rule
checks and why each exclusion is there), and each rule can fail."""

from __future__ import annotations

from pathlib import Path

from tests.architecture.layout import (
    import_cycles,
    import_graph,
    leaks,
    modules,
    sandbox_imports,
)

ROOT = Path(__file__).resolve().parents[2] / "dealdesk"


def test_dealdesk_modules_import_each_other_without_a_cycle():
    assert import_cycles(import_graph(modules(ROOT))) == []


def test_no_module_above_providers_names_a_vendor_or_probes_an_adapter():
    assert leaks(modules(ROOT)) == []


def test_the_sandbox_imports_nothing_from_the_apps():
    assert sandbox_imports(modules(ROOT), "dealdesk") == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "app"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_through_three_modules_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "from app import b\n",
            "b.py": "from app.c import thing\n",
            "c.py": "import app.a\nthing = 1\n",
            "d.py": "from app import a\n",
        },
    )
    assert import_cycles(import_graph(modules(root))) == [["app.a", "app.b", "app.c"]]


def test_imports_that_never_run_at_import_time_make_no_cycle(tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "from app import b\n",
            "b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import a\n"
                "def later():\n    from app import a\n"
            ),
        },
    )
    assert import_cycles(import_graph(modules(root))) == []


def test_a_vendor_name_in_code_above_providers_is_found_but_not_in_comments(tmp_path):
    root = _package(
        tmp_path,
        {
            "deals/__init__.py": "",
            "deals/views.py": (
                '"""Stora keeps won/lost in a status (../shared/api/stora.md)."""\n'
                "# a nodestash lost stage is the reason\n"
                "STORAGES = {}\n"
                'if provider == "nodestash":\n    pass\n'
                "from app.providers.stora import StoraAdapter\n"
            ),
            "providers/__init__.py": "",
            "providers/stora.py": 'NAME = "stora"\n',
            "sandbox/__init__.py": 'VENDORS = ("stora", "nodestash")\n',
            "settings.py": 'STORA_API_KEY = ""\n',
        },
    )
    found = leaks(modules(root))
    assert sorted(line.split(":", 1)[1] for line in found) == [
        "4: names the vendor 'nodestash'",
        "6: names the vendor 'Stora'",
        "6: names the vendor 'stora'",
    ]
    assert all("deals/views.py" in line for line in found)


def test_a_probed_adapter_above_providers_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "listing.py": (
                "def pages(adapter, self):\n"
                "    if hasattr(adapter, 'list_deals_at'):\n        pass\n"
                "    return getattr(self.adapter, 'cursor', None)\n"
            ),
        },
    )
    assert [line.split(": ", 1)[1] for line in leaks(modules(root))] == [
        "probes an adapter with hasattr",
        "probes an adapter with getattr",
    ]


def test_a_sandbox_import_of_another_app_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "sandbox/__init__.py": "from app.sandbox import core\n",
            "sandbox/core.py": "def f():\n    from app.deals.roles import ensure_roles\n",
            "deals/__init__.py": "",
        },
    )
    assert [line.split(": ", 1)[1] for line in sandbox_imports(modules(root), "app")] == [
        "imports app.deals.roles"
    ]
