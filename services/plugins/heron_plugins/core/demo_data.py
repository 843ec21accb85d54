"""The demo-data plugin: realistic collections, items and users to try Heron with, or to
measure it on.

`POST /api/plugins/demo-data/seed` (permission `demo-data.seed`) with
`{"items": 1000, "users": true, "seed": 7}` makes, the first time, the collections `categories`,
`authors` and `articles` (articles reference a category and an author), a few categories and
authors, and demo users (an editor, two authors, a viewer, at `@demo.example`, with random
passwords nobody is told: set one to sign in as them); then `items` articles (at most 1,000 per
call, in one transaction, through the content service's import). `heron seed --items N` calls
it in batches and shows the progress.

Everything is done as the caller, with the caller's permissions: a role that may not create
collections, users or items gets the service's refusal, as it would through the REST API.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from cms.auth.v1 import auth_pb2
from cms.common.v1 import common_pb2
from cms.content.v1 import content_pb2
from heron_common.errors import AlreadyExists, DomainError
from heron_common.rpc.client import call
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heron_plugins.manifest import Manifest, PluginContext, PluginRequest, PluginResponse, Route

PERMISSION = "demo-data.seed"
MAX_ITEMS = 1000
TIMEOUT = 30.0
DOMAIN = "demo.example"

COLLECTIONS: list[dict[str, Any]] = [
    {
        "name": "categories",
        "display_name": "Categories",
        "description": "Topics articles are filed under (demo data)",
        "schema": {
            "type": "object",
            "properties": {
                "description": {"type": "textarea", "title": "Description"},
                "color": {"type": "color", "title": "Colour"},
            },
        },
    },
    {
        "name": "authors",
        "display_name": "Authors",
        "description": "The people who write the articles (demo data)",
        "schema": {
            "type": "object",
            "properties": {
                "bio": {"type": "textarea", "title": "Biography"},
                "email": {"type": "email", "title": "Email"},
                "website": {"type": "url", "title": "Website"},
            },
        },
    },
    {
        "name": "articles",
        "display_name": "Articles",
        "description": "Articles with a category and an author (demo data)",
        "schema": {
            "type": "object",
            "properties": {
                "body": {"type": "richtext", "title": "Body", "required": True},
                "excerpt": {"type": "textarea", "title": "Excerpt", "maxLength": 300},
                "category": {"type": "reference", "collection": "categories", "indexed": True},
                "author": {"type": "reference", "collection": "authors", "indexed": True},
                "tags": {"type": "array", "title": "Tags", "items": {"type": "string"}},
                "reading_minutes": {"type": "integer", "minimum": 1, "maximum": 60},
                "featured": {"type": "boolean", "default": False},
            },
        },
    },
]
CATEGORIES = 8
AUTHORS = 12
USERS = (("editor", "editor"), ("author", "author"), ("author", "author"), ("viewer", "viewer"))
# Most articles are out, some are being written, a few were taken down.
STATUSES = (("published", 70), ("draft", 25), ("archived", 5))


class SeedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: int = Field(default=100, ge=0, le=MAX_ITEMS)
    users: bool = True
    seed: int | None = Field(default=None, description="The same seed makes the same data.")


@dataclass
class _Words:
    """Pools of Faker's text, drawn once: combining them is fast enough for 100k items a
    minute, where asking Faker for every field is not."""

    phrases: list[str]
    actions: list[str]
    paragraphs: list[str]
    words: list[str]


_pools: dict[int, _Words] = {}


def _words(seed: int) -> _Words:
    if seed not in _pools:
        from faker import Faker  # only loaded once somebody seeds

        fake = Faker()
        fake.seed_instance(seed)
        _pools.clear()
        _pools[seed] = _Words(
            # A million titles: namesakes (and so numbered slugs) stay rare.
            phrases=[fake.catch_phrase() for _ in range(1000)],
            actions=[fake.bs() for _ in range(1000)],
            paragraphs=[fake.paragraph(nb_sentences=5) for _ in range(300)],
            words=sorted({fake.word() for _ in range(300)}),
        )
    return _pools[seed]


def _title(rng: random.Random, words: _Words) -> str:
    return f"{rng.choice(words.phrases)}: how to {rng.choice(words.actions)}"


def article(rng: random.Random, words: _Words, categories: list[str], authors: list[str]) -> Any:
    paragraphs = rng.sample(words.paragraphs, rng.randint(2, 5))
    status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
    data = {
        "body": "".join(f"<p>{p}</p>" for p in paragraphs),
        "excerpt": paragraphs[0][:300],
        "category": rng.choice(categories),
        "author": rng.choice(authors),
        "tags": rng.sample(words.words, rng.randint(1, 4)),
        "reading_minutes": max(1, sum(len(p) for p in paragraphs) // 1000 + rng.randint(1, 4)),
        "featured": rng.random() < 0.1,
    }
    return content_pb2.NewItem(
        title=_title(rng, words), data_json=orjson.dumps(data), status=status
    )


class DemoData:
    def __init__(self, context: PluginContext, request: PluginRequest) -> None:
        self.context = context
        self.metadata = request.credentials

    async def _call(self, method: Any, message: Any) -> Any:
        return await call(method, message, timeout=TIMEOUT, metadata=self.metadata)

    async def collections(self) -> list[str]:
        """Make the demo collections that are missing; their names."""
        content = self.context.content
        listed = await self._call(content.ListCollections, content_pb2.ListCollectionsRequest())
        have = {c.name for c in listed.collections}
        made = []
        for spec in COLLECTIONS:
            if spec["name"] in have:
                continue
            try:
                await self._call(
                    content.CreateCollection,
                    content_pb2.CreateCollectionRequest(
                        name=spec["name"],
                        display_name=spec["display_name"],
                        description=spec["description"],
                        schema_json=orjson.dumps(spec["schema"]),
                    ),
                )
            except AlreadyExists:
                continue  # another seed made it meanwhile
            made.append(spec["name"])
        return made

    async def users(self, rng: random.Random) -> int:
        """Make the demo users that are missing; how many were made."""
        from faker import Faker

        fake = Faker()
        fake.seed_instance(rng.randrange(1 << 30))
        made = 0
        for number, (kind, role) in enumerate(USERS, start=1):
            first, last = fake.first_name(), fake.last_name()
            try:
                await self._call(
                    self.context.auth.CreateUser,
                    auth_pb2.CreateUserRequest(
                        email=f"{kind}{number}@{DOMAIN}",
                        # Nobody is told it: an admin sets one to sign in as a demo user.
                        password=secrets.token_urlsafe(24),
                        first_name=first,
                        last_name=last,
                        role=role,
                    ),
                )
            except AlreadyExists:
                continue
            made += 1
        return made

    async def ids(self, collection: str, wanted: int) -> list[str]:
        listed = await self._call(
            self.context.content.ListItems,
            content_pb2.ListItemsRequest(
                collection=collection, page=common_pb2.PageRequest(limit=wanted)
            ),
        )
        return [item.id for item in listed.items]

    async def ensure(self, collection: str, wanted: int, make: Any) -> list[str]:
        """Up to `wanted` ids of the collection's items, making what is missing."""
        ids = await self.ids(collection, wanted)
        missing = wanted - len(ids)
        if missing > 0:
            ids += await self.add(collection, [make() for _ in range(missing)])
        return ids

    async def add(self, collection: str, items: list[Any]) -> list[str]:
        if not items:
            return []
        reply = await self._call(
            self.context.content.ImportItems,
            content_pb2.ImportItemsRequest(collection=collection, items=items),
        )
        return list(reply.ids)

    async def seed(self, asked: SeedRequest) -> dict[str, Any]:
        seed = asked.seed if asked.seed is not None else secrets.randbits(30)
        rng = random.Random(seed)
        words = _words(seed)
        collections = await self.collections()
        users = await self.users(rng) if asked.users else 0

        def category() -> Any:
            name = rng.choice(words.words).capitalize()
            data = {
                "description": rng.choice(words.paragraphs),
                "color": f"#{rng.randrange(1 << 24):06x}",
            }
            return content_pb2.NewItem(
                title=f"{name} {rng.choice(('news', 'guides', 'stories', 'notes'))}",
                data_json=orjson.dumps(data),
                status="published",
            )

        def author() -> Any:
            title = rng.choice(words.phrases)
            handle = "-".join(title.lower().split()[:2])
            data = {
                "bio": rng.choice(words.paragraphs),
                "email": f"{handle}@{DOMAIN}",
                "website": f"https://{DOMAIN}/{handle}",
            }
            return content_pb2.NewItem(
                title=f"The {title} desk", data_json=orjson.dumps(data), status="published"
            )

        categories = await self.ensure("categories", CATEGORIES, category)
        authors = await self.ensure("authors", AUTHORS, author)
        ids = await self.add(
            "articles", [article(rng, words, categories, authors) for _ in range(asked.items)]
        )
        return {
            "collections": collections,
            "users": users,
            "items": len(ids),
            "seed": seed,
        }


class _Running:
    context: PluginContext | None = None


_running = _Running()


async def start(context: PluginContext) -> None:
    _running.context = context


async def stop() -> None:
    _running.context = None


def _json(status: int, value: Any) -> PluginResponse:
    return PluginResponse(status, orjson.dumps(value))


async def seed(request: PluginRequest) -> PluginResponse:
    if _running.context is None:
        return _json(503, {"error": "The demo-data plugin is starting; retry shortly."})
    try:
        asked = SeedRequest.model_validate(request.json() or {})
    except orjson.JSONDecodeError:
        return _json(400, {"error": "Validation failed: the body is not JSON", "details": []})
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return _json(400, {"error": "Validation failed", "details": details})
    try:
        made = await DemoData(_running.context, request).seed(asked)
    except DomainError as exc:
        # The service's own answer, as the caller would have had it from the REST API.
        return _json(
            exc.http_status,
            {"error": exc.message, "details": [d.to_dict() for d in exc.details]},
        )
    return _json(201, {"data": made})


manifest = Manifest(
    name="demo-data",
    version="1.0.0",
    description="Seeds realistic collections, items (with references) and users; "
    "`heron seed --items N` drives it.",
    author="Heron",
    permissions=(PERMISSION,),
    routes=(Route(method="POST", path="/seed", permission=PERMISSION, handler=seed),),
    start=start,
    stop=stop,
)
