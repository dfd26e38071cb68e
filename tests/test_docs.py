"""Every file the docs, docstrings and comments name is in the repository.

Scanned: the Markdown of ``docs/`` and the README (all of it); the
docstrings and comments of the Python in ``ingest/``, ``console/``,
``tests/`` and ``bench/``; the comments of the JavaScript and CSS in
``static/`` (the vendored uPlot left out) and of the templates. In them:

- repo-relative paths (``ingest/pipeline/wire.py``, ``docs/x.md``,
  ``tests/data/...``, globs like ``static/console/tabs/*.js``) must exist;
- relative Markdown links (``[text](wire-fields.md)``) must resolve from
  the file that holds them;
- dotted names of the project's modules (``ingest.model.frames``,
  ``console.windows.durability.store_state``) must name a module, and the
  first name after it something the module defines or imports;
- documents that are not the project's (the notes this project was built
  from) must not be cited at all: a reader of the repository cannot open
  them. ``docs/wire-protocol.md`` is ours; the bare name is not, and the
  captures are cited where the repository keeps them, under ``tests/data/``.

The test data (``tests/data/``, real captures with their own READMEs) is
not scanned.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The top-level folders a reference starts with: these, and any other the checkout has
#: (a reference to one that went away is still caught when it is one of these).
TOP = tuple(sorted({"ingest", "console", "docs", "tests", "bench", "static", "templates", "scripts"}
                   | {p.name for p in ROOT.iterdir() if p.is_dir() and p.name[0] not in "._"
                      and (p / "__init__.py").exists()}))
PYTHON_DIRS = ("ingest", "console", "tests", "bench")
SKIP = (ROOT / "tests" / "data", ROOT / "static" / "vendor")

#: A repo-relative path: one of the top-level folders, then path characters.
PATH = re.compile(r"(?<![\w./@~-])((?:" + "|".join(TOP) + r")/[\w./*-]*)")
#: A dotted module name of the project (``console.example`` is the docs' host name).
DOTTED = re.compile(r"(?<![\w./-])((?:ingest|console)(?:\.[A-Za-z_]\w*)+)(?![\w/-])")
NOT_MODULES = {"console.example", "console.internal_errors"}  # a host name, a message key
#: File names such as console.css are not modules.
SUFFIXES = {"css", "js", "md", "py", "html", "json", "png", "svg", "gz", "txt"}
#: Files the code writes and names, but which are not kept in the repository.
GENERATED = {"bench/results/fuzz-crashes.jsonl"}
#: A relative Markdown link target.
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
#: The notes the project was built from, which are not in it; wire-protocol.md counts
#: when not preceded by docs/.
FOREIGN = re.compile(r"(?<![\w/-])(?<!docs/)(design\.md|wire-protocol\.md|real-mod-wsgi\.md|"
                     r"reference-console\.md|browser-tests\.md|style-examples\.md)|(?<![\w/-])(wire-vectors/)")


def _skipped(path: Path) -> bool:
    return path == Path(__file__).resolve() or any(path.is_relative_to(s) for s in SKIP)


def _python_texts(path: Path) -> Iterator[tuple[int, str]]:
    """(first line, text) of every docstring and comment of a Python file."""
    source = path.read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                docstrings.add((first.lineno, first.col_offset))
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and tok.start in docstrings):
            yield tok.start[0], tok.string


_JS_COMMENT = re.compile(r"/\*.*?\*/|(?<![:\"'\\])//[^\n]*", re.S)
_HTML_COMMENT = re.compile(r"<!--.*?-->|\{#.*?#\}|\{%\s*comment\s*%\}.*?\{%\s*endcomment\s*%\}", re.S)


def _pattern_texts(path: Path, pattern: re.Pattern[str]) -> Iterator[tuple[int, str]]:
    source = path.read_text()
    for match in pattern.finditer(source):
        yield source.count("\n", 0, match.start()) + 1, match.group()


def texts() -> Iterator[tuple[Path, int, str]]:
    """(file, line, text) of everything scanned."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        yield path, 1, path.read_text()
    for top in PYTHON_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if not _skipped(path):
                for line, text in _python_texts(path):
                    yield path, line, text
    for top in ("static", "console", "templates"):
        for suffix, pattern in ((".js", _JS_COMMENT), (".css", _JS_COMMENT), (".html", _HTML_COMMENT)):
            for path in sorted((ROOT / top).rglob("*" + suffix)):
                if not _skipped(path):
                    for line, text in _pattern_texts(path, pattern):
                        yield path, line, text


def _where(path: Path, line: int, text: str, at: int) -> str:
    return f"{path.relative_to(ROOT)}:{line + text.count(chr(10), 0, at)}"


def _exists(ref: str, after: str = "") -> bool:
    """Whether ``ref`` names something in the repository; ``after`` is the character after it."""
    ref = ref.rstrip(".")  # the end of a sentence, or "tests/data/..."
    if ref in GENERATED:
        return True
    if after in ("<", "{"):  # bench/results/agent-<UTC>.json: a pattern
        ref += "*"
    head, _, last = ref.rstrip("/").rpartition("/")
    if last.isupper():  # docs/screenshots/NAME: a placeholder
        ref = head
    if "*" in ref:
        return any(ROOT.glob(ref))
    return (ROOT / ref).exists()


@cache
def _defined(module: Path) -> frozenset[str]:
    """Names a module defines or imports at its top level (and its submodules, for a package)."""
    tree = ast.parse(module.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for target in node.targets for t in ast.walk(target) if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    if module.name == "__init__.py":
        names.update(p.stem for p in module.parent.glob("*.py"))
        names.update(p.name for p in module.parent.iterdir() if (p / "__init__.py").exists())
    return frozenset(names)


def _module_problem(dotted: str) -> str | None:
    """Why ``dotted`` names nothing of the project, or None when it does."""
    if dotted in NOT_MODULES or dotted.rpartition(".")[2] in SUFFIXES:
        return None
    parts = dotted.split(".")
    module = None
    depth = 0
    for i in range(1, len(parts) + 1):
        base = ROOT.joinpath(*parts[:i])
        if (base / "__init__.py").exists():
            module, depth = base / "__init__.py", i
        elif base.with_suffix(".py").exists():
            module, depth = base.with_suffix(".py"), i
            break
        else:
            break
    if module is None:
        return "no such package"
    if depth < len(parts) and parts[depth] not in _defined(module):
        return f"{module.relative_to(ROOT)} has no {parts[depth]!r}"
    return None


def problems() -> list[str]:
    out = []
    for path, line, text in texts():
        for match in PATH.finditer(text):
            if not _exists(match.group(1), text[match.end():match.end() + 1]):
                out.append(f"{_where(path, line, text, match.start())}: {match.group(1)} does not exist")
        for match in DOTTED.finditer(text):
            problem = _module_problem(match.group(1).rstrip("."))
            if problem:
                out.append(f"{_where(path, line, text, match.start())}: {match.group(1)}: {problem}")
        for match in FOREIGN.finditer(text):
            if match.group(1):
                out.append(f"{_where(path, line, text, match.start())}: cites {match.group(1)}, which is not "
                           "in the repository (docs/wire-protocol.md is, or say the fact in place)")
            else:
                out.append(f"{_where(path, line, text, match.start())}: wire-vectors/ is "
                           "tests/data/wire-vectors/ in the repository")
        if path.suffix == ".md":
            for match in LINK.finditer(text):
                target = match.group(1)
                if "://" in target or target.startswith("mailto:"):
                    continue
                if not (path.parent / target).exists():
                    out.append(f"{_where(path, line, text, match.start())}: link {target} does not resolve")
    return out


def test_every_file_named_in_docs_docstrings_and_comments_exists():
    found = problems()
    assert not found, "references to files that are not in the repository:\n" + "\n".join(found)


@pytest.mark.parametrize(("text", "expected"), [
    ("see ingest/pipeline/wire.py.", []),
    ("bench/results/agent-<UTC>.json, docs/screenshots/NAME, console.css", []),
    ("see ingest/pipeline/nowhere.py and docs/none.md", ["ingest/pipeline/nowhere.py", "docs/none.md"]),
    ("captures in tests/data/... and static/console/tabs/*.js", []),
    ("(wire-protocol.md section 6), design.md", ["wire-protocol.md", "design.md"]),
    ("docs/wire-protocol.md, tests/data/wire-vectors/raw but not wire-vectors/raw", ["wire-vectors/"]),
    ("``ingest.model.frames.merge`` and ingest.frames", ["ingest.frames"]),
    ("wss://console.example/ws/agent/ and /run/wsgi-fleet/telemetry.sock", []),
])
def test_the_scanner_finds_what_it_should(text, expected):
    """The scanner itself, on known text (its own docstring is not scanned)."""
    found = [m.group(1) for m in PATH.finditer(text) if not _exists(m.group(1), text[m.end():m.end() + 1])]
    found += [m.group(1) for m in DOTTED.finditer(text) if _module_problem(m.group(1))]
    found += [m.group() for m in FOREIGN.finditer(text)]
    assert sorted(found) == sorted(expected)
