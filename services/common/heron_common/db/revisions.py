"""Whether a service's store is at its newest revision, told without importing Alembic, and
migrations run in a child process when it is not.

Alembic (with Mako and Pygments) adds about 12 MB to a process that imports it, and Python
never gives that memory back. A service that starts on a store already at head (every
restart, and every start after `heron migrate`) reads its version table and the revision ids
of its migration files and never imports Alembic; one that must migrate does it in a child
process that exits afterwards, so the serving process stays lean either way.
"""

from __future__ import annotations

import ast
import asyncio
import sys
from pathlib import Path

import orjson
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from heron_common.db import Database, create_engine


def version_table(service: str) -> str:
    """The table that records a service's revision, in its own database."""
    return f"alembic_version_{service}"


def _assigned(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value:
                return ast.literal_eval(node.value)
    raise LookupError(name)


def head_revision(script_location: Path) -> str | None:
    """The one revision no other migration revises; None when that cannot be told for sure
    (several heads, or a file this reading does not understand): Alembic then decides."""
    revisions: set[str] = set()
    revised: set[str] = set()
    try:
        for path in sorted((script_location / "versions").glob("[!_]*.py")):  # not __init__
            tree = ast.parse(path.read_text(encoding="utf-8"))
            revision = _assigned(tree, "revision")
            down = _assigned(tree, "down_revision")
            if not isinstance(revision, str):
                return None
            revisions.add(revision)
            if isinstance(down, str):
                revised.add(down)
            elif isinstance(down, tuple | list):
                revised.update(str(d) for d in down)
            elif down is not None:
                return None
    except (OSError, SyntaxError, ValueError, LookupError):
        return None
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


async def at_head(database: Database, script_location: Path, table: str) -> bool:
    """The store records exactly the newest revision of `script_location`."""
    head = head_revision(script_location)
    if head is None:
        return False
    try:
        async with database.engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT version_num FROM {table}"))).scalars().all()
    except DBAPIError:
        # No version table yet (a new store), or no database at all: the migrations, run next,
        # create the one and report the other.
        return False
    return list(rows) == [head]


def _upgrade_here(url: str, script_location: str, table: str, advisory_lock_id: int) -> bool:
    """The child's work: the migrations on a database of its own (see migrations.upgrade)."""
    from heron_common.db import migrations

    async def run() -> bool:
        database = Database(create_engine(url, pool_size=1))
        try:
            return await migrations.upgrade(
                database,
                script_location=Path(script_location),
                version_table=table,
                advisory_lock_id=advisory_lock_id,
            )
        finally:
            await database.dispose()

    return asyncio.run(run())


async def upgrade_in_child(
    database: Database, url: str, *, script_location: Path, table: str, advisory_lock_id: int
) -> bool:
    """Bring the store at `url` to head in a child process; whether the store was created by
    it. The parent's pooled connections are dropped: the schema changed under them."""
    # The URL may hold a password: it goes through a pipe, never the command line.
    job = orjson.dumps([url, str(script_location), table, advisory_lock_id])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate(job)
    if child.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-20:]
        raise RuntimeError("the migrations failed:\n" + "\n".join(tail))
    await database.engine.dispose()
    return bool(orjson.loads(out.splitlines()[-1])["created"])


if __name__ == "__main__":
    url_, location_, table_, lock_ = orjson.loads(sys.stdin.buffer.read())
    created_ = _upgrade_here(url_, location_, table_, lock_)
    sys.stdout.write(orjson.dumps({"created": created_}).decode() + "\n")
