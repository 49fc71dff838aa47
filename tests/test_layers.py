"""Layers import downwards only: runtime and reliability name no kind and no provider, and never import
from the integrations (docs/architecture.md, "Layers")."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

KIND_WORDS = re.compile(r"\b(sms|e-?mail|smtp|ses|viettel|vnpt|mobifone|postal|vnpost|lgsp|dvcqg|signing|"
                        r"porting|ported|carrier|brandname)\b", re.IGNORECASE)


def _python_files(*folders: str) -> list:
    return [p for f in folders for p in (ROOT / "shared" / f).rglob("*") if p.suffix in (".py", ".lua")]


def test_runtime_and_reliability_do_not_import_integrations():
    for path in _python_files("runtime", "reliability"):
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("shared.integrations", "functions", "sandbox")), f"{path}: {name}"


def test_runtime_and_reliability_name_no_kind_or_provider():
    for path in _python_files("runtime", "reliability"):
        hits = [line for line in path.read_text().splitlines() if KIND_WORDS.search(line)]
        assert not hits, f"{path.relative_to(ROOT)}: {hits[:3]}"


def test_runtime_imports_nothing_above_it():
    """runtime < security < reliability < integrations: the runtime uses storage and observability only."""
    for path in _python_files("runtime"):
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("shared.security", "shared.reliability")), f"{path}: {name}"

