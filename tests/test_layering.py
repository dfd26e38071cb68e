"""The package layering, read from the import statements of every module.

``ingest.model`` is what agent and console share; if the console reached
into the agent's pipeline, or the model into a clock or a socket, the
console process would load the agent's threads and tables, and a change to
the agent would break the console unseen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What the model may not use: it has no I/O, no threads and no clock of its own.
IMPURE = {"asyncio", "os", "socket", "threading", "time", "subprocess", "pathlib", "logging",
          "datetime", "random", "select", "signal", "queue", "multiprocessing", "io", "shutil"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of each import in ``path``, relative ones resolved."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]  # a module's package; an __init__'s own package
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            if node.module is None:
                for alias in node.names:  # "from . import wire" names modules
                    yield node.lineno, f"{prefix}.{alias.name}"
            else:
                yield node.lineno, prefix


def breaches(package: str, allowed) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {name}"
            for path in modules(package) for line, name in imports(path) if not allowed(path, name)]


def top(name: str) -> str:
    return name.split(".")[0]


def test_the_agent_never_imports_django_or_the_console():
    assert breaches("ingest", lambda path, name: top(name) not in ("django", "channels", "console")) == []


def test_the_console_imports_nothing_of_ingest_but_the_model():
    def allowed(path: Path, name: str) -> bool:
        return top(name) != "ingest" or name == "ingest.model" or name.startswith("ingest.model.")
    assert breaches("console", allowed) == []


def test_the_model_imports_nothing_else_of_the_project_and_does_no_io():
    def allowed(path: Path, name: str) -> bool:
        if top(name) in ("ingest", "console"):
            return name == "ingest.model" or name.startswith("ingest.model.")
        return top(name) not in IMPURE
    assert breaches("ingest/model", allowed) == []


@pytest.mark.parametrize(("package", "expected"), [
    ("ingest", {"ingest.model.kinds", "ingest.pipeline.wire", "ingest.model.fields"}),  # relative
    ("console", {"ingest.model.frames", "console.windows.store"}),
])
def test_the_rule_reader_sees_imports(package, expected):
    """The rules above hold because they read what they think they read."""
    names = {name for path in modules(package) for _, name in imports(path)}
    assert expected <= names
