"""The README's SonicJS compatibility table keeps its promise: every row that says Heron does
the "same" as SonicJS names at least one test, and every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
E2E = ROOT / "tests" / "e2e"
SECTION = "## Coming from SonicJS"
# `file.py::name` or, after a row has named its file, `::name`.
REFERENCE = re.compile(r"`(?:(?P<file>[a-z_]+\.py))?(?:::(?P<name>[A-Za-z_][A-Za-z0-9_]*))?`")


def table_rows() -> list[list[str]]:
    text = README.read_text()
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append(cells)
    assert rows and rows[0][:3] == ["SonicJS", "Heron", ""], rows[:1]
    return rows[1:]


def defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def references(cell: str) -> list[tuple[str, str]]:
    """(file, name) pairs a cell names; a name without a file belongs to the last file named."""
    found: list[tuple[str, str]] = []
    current = ""
    for match in REFERENCE.finditer(cell):
        current = match["file"] or current
        if match["file"] and not match["name"]:
            found.append((current, ""))
        elif match["name"]:
            assert current, f"{cell!r}: `::{match['name']}` before any file is named"
            found.append((current, match["name"]))
    return found


def test_every_same_row_names_a_test_and_each_named_test_exists() -> None:
    rows = table_rows()
    assert {row[2] for row in rows} <= {"same", "extended", "different", "not yet"}, rows
    missing = []
    for row in rows:
        named = references(row[3])
        if row[2] == "same" and not any(name.startswith("test_") for _, name in named):
            missing.append(f"no test named for the same row {row[0]!r}")
        for file, name in named:
            path = E2E / file
            if not path.exists():
                missing.append(f"{row[0]!r}: tests/e2e/{file} does not exist")
            elif name and name not in defined_names(path):
                missing.append(f"{row[0]!r}: {file} has no {name}")
    assert not missing, "\n".join(missing)
