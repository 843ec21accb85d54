"""The route table finds a path's routes by its leading segments: exactly the routes, in the
order, that trying every route's pattern would give."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from heron_gateway.app import create_app
from heron_gateway.routing import RouteTable
from heron_gateway.settings import GatewaySettings


def _api() -> FastAPI:
    app = create_app(GatewaySettings())
    while not isinstance(app, FastAPI):  # the middleware around it
        app = getattr(app, "app", None) or app.api  # type: ignore[attr-defined]
    return app


TABLE = RouteTable(_api().routes)
ODD = ["/", "/api", "/api/", "/nope", "/a/b/c/d", "//", "/api/content/x/y/z", "/Auth/login"]
AN_ID = "6f1c2a4e-0b7d-4c3e-9a51-2d8e7f6a9b10"


def _example(template: str) -> str:
    """A path a route's own template matches (a UUID where it takes one)."""
    return re.sub(r"\{[^}]*\}", "content", re.sub(r"\{[^}:]*:uuid\}", AN_ID, template))


PATHS = sorted({_example(r.template) for r in TABLE.routes} | set(ODD))


@pytest.mark.parametrize("path", PATHS)
def test_matching_is_trying_every_route(path: str) -> None:
    every = [r for r in TABLE.routes if r.path_regex.match(path)]
    assert TABLE.matching(path) == every
    if path not in ODD:
        assert every  # a route's own path reaches it
