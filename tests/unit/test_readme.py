"""The README's configuration tables name exactly the environment variables Heron reads.

Every `| variable | default | meaning |` table under `## Configuration` is parsed: each row
names one variable in full (no abbreviations). The variables read are collected from the
settings classes themselves (`model_fields`, `model_config["env_prefix"]`, aliases), for
every settings class in the repository, so a new field fails this test until it is documented
and a documented variable fails it once nobody reads it.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heron_common.settings import HeronSettings
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SOURCE_DIRS = ("gateway", "services", "cli")
TABLE_HEADER = ("variable", "default", "meaning")
VARIABLE_CELL = re.compile(r"`([A-Z][A-Z0-9_]*)`")


@dataclass(frozen=True)
class Read:
    """One environment variable a settings field reads."""

    name: str
    owner: str  # e.g. `GatewaySettings.port`
    default: Any
    other_names: tuple[str, ...]  # further variables the same field accepts (`REDIS_URL`)


# -- the README ----------------------------------------------------------------------------


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no `## {title}` section"
    return match.group(1)


def _cells(line: str) -> list[str]:
    # `\|` inside a cell is an escaped pipe, not a column separator.
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def readme_rows() -> dict[str, list[str]]:
    """Variable → its row's cells, from every configuration table."""
    rows: dict[str, list[str]] = {}
    in_table = False
    tables = 0
    for line in _section(README.read_text(), "Configuration").splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if tuple(c.lower() for c in cells) == TABLE_HEADER:
            in_table = True
            tables += 1
            continue
        if not in_table or set("".join(cells)) <= set("-: "):
            continue
        assert len(cells) == 3, f"a configuration row needs 3 cells: {line}"
        match = VARIABLE_CELL.fullmatch(cells[0])
        assert match, (
            f"name one variable per row, in full and in backticks (not {cells[0]!r}): {line}"
        )
        name = match.group(1)
        assert name not in rows, f"{name} is listed twice in the configuration tables"
        rows[name] = cells
    assert tables, "no `| variable | default | meaning |` table under ## Configuration"
    return rows


# -- the settings ----------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    """The importable name of a source file: from the first folder that is not a package."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def settings_classes_in_source() -> dict[str, str]:
    """Class name → module of every class in the source tree derived from BaseSettings."""
    known = {"BaseSettings"}
    found: dict[str, str] = {}
    classes: list[tuple[str, list[str], str]] = []
    for top in SOURCE_DIRS:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts or "generated" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(b) for b in node.bases]
                    classes.append((node.name, bases, _module_name(path)))
    changed = True
    while changed:  # subclasses of subclasses, in any order of files
        changed = False
        for name, bases, module in classes:
            if name not in found and any(b.split(".")[-1] in known for b in bases):
                found[name] = module
                known.add(name)
                changed = True
    return found


def settings_classes() -> list[type[BaseSettings]]:
    """The repository's settings classes, imported."""
    classes = []
    for name, module in settings_classes_in_source().items():
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, BaseSettings), f"{module}.{name} is not a settings class"
        classes.append(cls)
    return classes


def process_settings(classes: list[type[BaseSettings]]) -> list[type[BaseSettings]]:
    """The classes processes instantiate: those no other repository class derives from."""
    return [c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)]


def environment_names(cls: type[BaseSettings], field: str, info: FieldInfo) -> list[str]:
    """The variables a field reads: its aliases, else the class's prefix + the field's name.

    A field's own lower-case name among its aliases lets code pass it by name; pydantic-settings
    also matches it case-insensitively against the environment (`LOG_LEVEL` sets `log_level`).
    That is not a documented interface, so it is left out here.
    """
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        names = [a for a in alias.choices if isinstance(a, str) and a != field]
        assert names, f"{cls.__name__}.{field}: AliasChoices without an environment name"
        return names
    assert alias is None or isinstance(alias, str), f"{cls.__name__}.{field}: unexpected alias"
    if isinstance(alias, str):
        return [alias]
    return [f"{cls.model_config.get('env_prefix', '')}{field}"]


def variables_read() -> dict[str, Read]:
    """Every variable the process settings read (inherited fields under each one's prefix)."""
    read: dict[str, Read] = {}
    for cls in process_settings(settings_classes()):
        assert not cls.model_config.get("case_sensitive"), f"{cls.__name__}: case-sensitive"
        for field, info in cls.model_fields.items():
            names = [n.upper() for n in environment_names(cls, field, info)]
            # The HERON_ name is the documented one; others (REDIS_URL) go in its row.
            names.sort(key=lambda n: not n.startswith("HERON_"))
            default = None if info.default_factory is not None else info.default
            owner = f"{cls.__name__}.{field}"
            read.setdefault(names[0], Read(names[0], owner, default, tuple(names[1:])))
    return read


def _shown(default: Any) -> str | None:
    """How the README writes a default in its default cell (None: not checked)."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, int):
        return str(default)
    if isinstance(default, Path):
        return f"./{default}"
    if isinstance(default, str) and default:
        return default
    return None  # empty or computed: the README says what it means (none, SQLite, …)


# -- the tests -------------------------------------------------------------------------------


def test_every_settings_class_is_found_and_read() -> None:
    classes = settings_classes()
    names = {c.__name__ for c in classes}
    assert {"HeronSettings", "GatewaySettings", "AuthSettings", "ContentSettings"} <= names
    assert all(issubclass(c, HeronSettings) for c in classes if c is not HeronSettings), (
        "every Heron settings class derives from HeronSettings (shared HERON_* fields)"
    )
    processes = {c.__name__ for c in process_settings(classes)}
    assert {"GatewaySettings", "AuthSettings", "ContentSettings"} <= processes
    # Every class's fields are read by some process: a base class's through its subclasses.
    covered = {f for c in process_settings(classes) for f in c.model_fields}
    for cls in classes:
        missing = set(cls.model_fields) - covered
        assert not missing, f"{cls.__name__} fields no process reads: {sorted(missing)}"


def test_readme_lists_exactly_the_variables_the_settings_read() -> None:
    documented = set(readme_rows())
    read = variables_read()
    not_read = sorted(documented - set(read))
    undocumented = sorted(f"{name} ({read[name].owner})" for name in set(read) - documented)
    assert not not_read and not undocumented, (
        "README.md ## Configuration and the settings classes disagree.\n"
        f"  In the README but read by no settings class: {not_read or 'none'}\n"
        f"  Read by a settings class but not in the README: {undocumented or 'none'}"
    )


def test_readme_defaults_and_other_names_match_the_settings() -> None:
    rows = readme_rows()
    wrong = []
    for name, read in sorted(variables_read().items()):
        if name not in rows:
            continue  # reported by the test above
        _, default_cell, meaning = rows[name]
        shown = _shown(read.default)
        if shown is not None and f"`{shown}`" not in default_cell:
            wrong.append(f"{name}: default is `{shown}` ({read.owner}), README says {default_cell}")
        for other in read.other_names:
            if f"`{other}`" not in meaning:
                wrong.append(f"{name}: its row should say it is also read as `{other}`")
    assert not wrong, "README.md ## Configuration rows are out of date:\n  " + "\n  ".join(wrong)
