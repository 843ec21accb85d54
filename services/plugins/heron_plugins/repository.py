"""Queries (SQLAlchemy Core): installed plugins and their activity log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from heron_plugins.models import plugin_activity, plugins


@dataclass(frozen=True, slots=True)
class Installed:
    name: str
    status: str
    version: str
    settings: dict[str, Any]
    installed_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Activity:
    plugin: str
    action: str
    actor: str
    at: int
    detail: str


def _installed(row: Any) -> Installed:
    return Installed(
        row.name, row.status, row.version, dict(row.settings), row.installed_at, row.updated_at
    )


async def all_installed(conn: AsyncConnection) -> dict[str, Installed]:
    rows = await conn.execute(select(plugins))
    return {row.name: _installed(row) for row in rows}


async def get(conn: AsyncConnection, name: str, *, for_update: bool = False) -> Installed | None:
    query = select(plugins).where(plugins.c.name == name)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _installed(row)


async def insert(conn: AsyncConnection, row: Installed) -> None:
    await conn.execute(
        plugins.insert().values(
            name=row.name,
            status=row.status,
            version=row.version,
            settings=row.settings,
            installed_at=row.installed_at,
            updated_at=row.updated_at,
        )
    )


async def update(conn: AsyncConnection, name: str, **values: Any) -> None:
    await conn.execute(plugins.update().where(plugins.c.name == name).values(**values))


async def delete(conn: AsyncConnection, name: str) -> None:
    await conn.execute(plugins.delete().where(plugins.c.name == name))


async def log(conn: AsyncConnection, entry: Activity) -> None:
    await conn.execute(
        plugin_activity.insert().values(
            plugin=entry.plugin,
            action=entry.action,
            actor=entry.actor,
            at=entry.at,
            detail=entry.detail,
        )
    )


async def activity(conn: AsyncConnection, name: str, limit: int) -> list[Activity]:
    query = (
        select(plugin_activity)
        .where(plugin_activity.c.plugin == name)
        .order_by(plugin_activity.c.id.desc())
        .limit(limit)
    )
    return [
        Activity(r.plugin, r.action, r.actor, r.at, r.detail) for r in await conn.execute(query)
    ]
