"""The layout rules of STYLE.md ("Where things live"), checked with ``ast`` over source files.

1. No import cycle between modules of ``dealdesk/``. Only module-level imports count (those run
   when a module is imported; a ``TYPE_CHECKING`` block never runs, an import inside a function
   runs late and cannot deadlock an import).
2. No module above ``providers/`` names a vendor ("stora", "nodestash", any case) in code:
   identifiers, attribute names, imported module names and string literals. Comments and
   docstrings may name one: STYLE.md asks that an assumed vendor behaviour carry a comment that
   points to ``../shared/api/<vendor>.md``, and a docstring that explains what a Stora deal looks
   like on the board teaches the reader without branching on it.
3. No module above ``providers/`` probes an adapter with ``hasattr(adapter…`` or a
   ``getattr(adapter…, default)``: capabilities are declared in the ``Provider`` protocol.

Not "above providers/", so excluded from 2 and 3 (never from 1):
- ``dealdesk/providers/``: the adapters and their registry are where vendors are named.
- ``dealdesk/sandbox/``: the simulators of the two vendors' APIs; it stands alone (rule 4).
- ``dealdesk/demo/``: wires the sandbox's two simulators (by their names and paths) to demo
  connections for ``make run``; it is never on a request's path and reads no vendor JSON.
- ``migrations/``: frozen history; the provider choices at the time are recorded there and a
  migration is never edited after it shipped.
- ``dealdesk/settings.py``: the operator's interface is ``STORA_API_KEY``/``NODESTASH_API_KEY``
  and their base URLs, documented in the README; settings only read the environment, and
  ``providers/registry.py`` names the setting each adapter uses.
4. ``dealdesk/sandbox/`` imports nothing from another ``dealdesk`` package (module level or not):
   it could be lifted into its own package.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

VENDOR = re.compile(r"(?<![a-z])(stora(?!ge)|nodestash)", re.IGNORECASE)
NOT_ABOVE_PROVIDERS = ("providers", "sandbox", "demo")  # top-level packages under the root
EXCLUDED_FILES = ("settings.py",)


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. dealdesk.deals.services
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def modules(root: Path) -> dict[str, Module]:
    """Every module of the package at ``root`` except migrations."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        if "migrations" in relative.parts:
            continue
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        found[name] = Module(name, path, ast.parse(path.read_text(), filename=str(path)))
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _module_level(block)
        else:
            yield node


def _imported(module: Module, node: ast.stmt, known: dict[str, Module]) -> set[str]:
    """The modules of ``known`` that ``node`` imports."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        targets = {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in known else source)
    return {t for t in targets if t in known and t != module.name}


def import_graph(found: dict[str, Module]) -> dict[str, set[str]]:
    return {
        name: set().union(*(_imported(m, n, found) for n in _module_level(m.tree.body)))
        for name, m in found.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _above_providers(module: Module) -> bool:
    parts = module.name.split(".")
    if len(parts) > 1 and parts[1] in NOT_ABOVE_PROVIDERS:
        return False
    return not (len(parts) == 2 and f"{parts[1]}.py" in EXCLUDED_FILES)


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _code_words(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, text) of every identifier, imported name and non-docstring string literal."""
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Name):
            yield line, node.id
        elif isinstance(node, ast.Attribute):
            yield line, node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield line, node.name
        elif isinstance(node, ast.arg | ast.keyword) and node.arg:
            yield line, node.arg
        elif isinstance(node, ast.alias):
            yield line, f"{node.name} {node.asname or ''}"
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield line, node.module
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield line, node.value


def _names_adapter(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return "adapter" in name.lower()


def leaks(found: dict[str, Module]) -> list[str]:
    """``path:line: what`` for every vendor name or adapter probe above providers/."""
    problems = []
    for module in found.values():
        if not _above_providers(module):
            continue
        for line, text in _code_words(module.tree):
            match = VENDOR.search(text)
            if match:
                problems.append(f"{module.path}:{line}: names the vendor {match.group(0)!r}")
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.args
                and _names_adapter(node.args[0])
                and (
                    node.func.id == "hasattr" or (node.func.id == "getattr" and len(node.args) > 2)
                )
            ):
                problems.append(
                    f"{module.path}:{node.lineno}: probes an adapter with {node.func.id}"
                )
    return sorted(problems)


def sandbox_imports(found: dict[str, Module], root_name: str) -> list[str]:
    """``path:line: module`` for every import of another app from inside the sandbox."""
    problems = []
    sandbox = f"{root_name}.sandbox"
    for module in found.values():
        if not (module.name == sandbox or module.name.startswith(sandbox + ".")):
            continue
        for node in ast.walk(module.tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                if name.startswith(root_name + ".") and not name.startswith(sandbox):
                    problems.append(f"{module.path}:{node.lineno}: imports {name}")
    return sorted(problems)
