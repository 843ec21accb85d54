"""The interactive API description (`/docs`): a pinned copy of Swagger UI served by the gateway.

Nothing is loaded from another origin, so the page works offline and its CSP allows scripts
from the gateway alone (see `static/swagger-ui/README.md` for the version and its source).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from heron_gateway.render import json_response
from heron_gateway.security import OPEN, Access

SWAGGER_UI_VERSION = "5.35.0"
ASSETS = Path(__file__).resolve().parent.parent / "static" / "swagger-ui"
_MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "heron-docs.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
Asset = Literal["swagger-ui-bundle.js", "heron-docs.js", "swagger-ui.css", "favicon-32x32.png"]
Open = Annotated[None, Depends(Access(OPEN))]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Heron API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/heron-docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs(_: Open) -> Response:
    return HTMLResponse(_PAGE)


@router.get("/docs/assets/{name}")
async def docs_asset(name: Asset, _: Open) -> Response:
    return FileResponse(
        ASSETS / name,
        media_type=_MEDIA_TYPES[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/api")
async def api_description(request: Request, _: Open) -> Response:
    """The OpenAPI document, where SonicJS serves its API description (`/openapi.json` too)."""
    return json_response(request.app.openapi(), headers={"Cache-Control": "public, max-age=60"})
