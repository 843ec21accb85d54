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
PATHS = sorted({re.sub(r"\{[^}]*\}", "content", r.template) for r in TABLE.routes} | set(ODD))


@pytest.mark.parametrize("path", PATHS)
def test_matching_is_trying_every_route(path: str) -> None:
    every = [r for r in TABLE.routes if r.path_regex.match(path)]
    assert TABLE.matching(path) == every
    if path not in ODD:
        assert every  # a route's own path reaches it
