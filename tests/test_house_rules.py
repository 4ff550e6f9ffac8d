"""The house rules a machine can check, beside ruff, strict mypy and import-linter
(`make lint`): imports at module level only, pages and routes that never end a
transaction themselves, modules of a readable size, one router convention, and
the error-code catalog kept in the architecture notes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from openvisit.errors import HTTP_STATUS, Code

SRC = Path(__file__).resolve().parents[1] / "src" / "openvisit"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
MAX_LINES = 700


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _is_web_module(path: Path) -> bool:
    rel = path.relative_to(SRC).parts
    return len(rel) >= 2 and rel[1].removesuffix(".py") in ("routes", "pages")


def test_no_module_imports_inside_a_function():
    """An import placed inside a function to dodge a cycle is a sign that the code
    belongs in a flow (STYLE.md)."""
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        found.append(f"{path.relative_to(SRC)}:{inner.lineno}")
    assert found == []


def test_no_page_or_route_ends_a_transaction_itself():
    calls = []
    for path in _modules():
        if not _is_web_module(path):
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.(rollback|commit)\(\)", line):
                calls.append(f"{path.relative_to(SRC)}:{lineno}")
    assert calls == []


def test_no_module_outside_migrations_runs_past_700_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_domain_mounts_a_routes_and_a_pages_router_in_routing_only():
    mounted = set(
        re.findall(
            r"from openvisit\.(\w+) import (routes|pages)\b", (SRC / "routing.py").read_text()
        )
    )
    for path in _modules():
        if path.name == "routing.py":
            continue
        assert "include_router(" not in path.read_text() or _is_web_module(path), path
    for domain, kind in mounted:
        assert (SRC / domain / f"{kind}.py").exists() or (SRC / domain / kind).is_dir()


def test_every_error_code_has_one_status_and_is_listed_in_the_architecture_notes():
    assert set(HTTP_STATUS) == set(Code)
    listed = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (\d{3}) \|", DOCS.read_text(), re.M))
    assert listed == {code.value: str(status) for code, status in HTTP_STATUS.items()}
