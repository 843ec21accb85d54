"""Repositories learn which constraint a write broke from the driver itself, on both stores."""

from __future__ import annotations

import pytest
from heron_common.db import create_engine
from heron_common.db.violations import Violation, violation
from sqlalchemy import Column, ForeignKey, MetaData, String, Table, UniqueConstraint, insert
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
parents = Table("parents", metadata, Column("id", String(8), primary_key=True))
children = Table(
    "children",
    metadata,
    Column("id", String(8), primary_key=True),
    Column("parent_id", String(8), ForeignKey("parents.id"), nullable=False),
    Column("slug", String(8), nullable=False),
    Column("token", String(8), unique=True),
    UniqueConstraint("parent_id", "slug", name="uq_children_parent_slug"),
)


async def _broken(database_url: str, *rows: dict[str, str]) -> Violation:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(parents).values(id="p1"))
        with pytest.raises(IntegrityError) as caught:
            async with engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                for row in rows:
                    await conn.execute(insert(children).values(**row))
        return violation(caught.value)
    finally:
        await engine.dispose()


CHILD = {"id": "c1", "parent_id": "p1", "slug": "a", "token": "t1"}


async def test_a_named_unique_constraint(database_url: str) -> None:
    broken = await _broken(database_url, CHILD, {**CHILD, "id": "c2", "token": "t2"})
    assert broken.is_unique("children", ["parent_id", "slug"], name="uq_children_parent_slug")
    assert not broken.is_unique("children", ["token"])


async def test_a_column_unique_constraint(database_url: str) -> None:
    broken = await _broken(database_url, CHILD, {**CHILD, "id": "c2", "slug": "b"})
    assert broken.is_unique("children", ["token"])
    assert not broken.is_unique("children", ["parent_id", "slug"], name="uq_children_parent_slug")


async def test_a_foreign_key(database_url: str) -> None:
    broken = await _broken(database_url, {**CHILD, "parent_id": "nobody"})
    assert broken.kind == "foreign_key"
    assert not broken.is_unique("children", ["token"])
