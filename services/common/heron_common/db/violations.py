"""Which constraint a write broke, read from the driver's structured error, for repositories to
turn into their own conflicts (use cases never look at driver errors).

PostgreSQL (asyncpg) names the constraint; SQLite names the columns of a unique constraint in
its fixed message form (`UNIQUE constraint failed: items.collection_id, items.slug`) and says
nothing more than `FOREIGN KEY constraint failed` for a foreign key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import IntegrityError

Kind = Literal["unique", "foreign_key", "other"]

_SQLSTATES: dict[str, Kind] = {"23505": "unique", "23503": "foreign_key"}
_SQLITE_UNIQUE = "UNIQUE constraint failed: "


@dataclass(frozen=True)
class Violation:
    kind: Kind
    constraint: str = ""
    """The constraint's name (PostgreSQL)."""
    columns: tuple[str, ...] = ()
    """`table.column` of a unique constraint (SQLite)."""

    def is_unique(self, table: str, columns: Sequence[str], name: str = "") -> bool:
        """Whether this is the unique constraint on `table(columns)`; `name` is its declared
        name, if it has one (PostgreSQL's default otherwise: `<table>_<columns>_key`)."""
        if self.kind != "unique":
            return False
        if self.constraint:
            return self.constraint == (name or f"{table}_{'_'.join(columns)}_key")
        return self.columns == tuple(f"{table}.{column}" for column in columns)


def violation(exc: IntegrityError) -> Violation:
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:  # asyncpg, through SQLAlchemy's adapter
        name = getattr(getattr(orig, "__cause__", None), "constraint_name", None) or ""
        return Violation(_SQLSTATES.get(str(sqlstate), "other"), constraint=name)
    message = str(orig)
    if message.startswith(_SQLITE_UNIQUE):
        columns = tuple(c.strip() for c in message[len(_SQLITE_UNIQUE) :].split(","))
        return Violation("unique", columns=columns)
    if message.startswith("FOREIGN KEY constraint failed"):
        return Violation("foreign_key")
    return Violation("other")
