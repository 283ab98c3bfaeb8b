"""GET /api/openapi.json: docs/openapi.yaml served as JSON, read and converted once at start-up."""

from __future__ import annotations

from pathlib import Path

import yaml

from expertconnect import __version__, wire
from expertconnect.handlers.base import BaseHandler
from expertconnect.resources import OPENAPI_PATH


def load_openapi(path: Path = OPENAPI_PATH) -> dict:
    """The document, its info.version set from the package (the one place a version lives)."""
    with open(path, encoding="utf-8") as f:
        document = yaml.safe_load(f)
    document["info"]["version"] = __version__
    return document


# Read at import, so a missing or broken document stops start-up instead of failing a request.
_OPENAPI_JSON = wire.dumps(load_openapi())


class OpenApiHandler(BaseHandler):
    # Public and static: no token, no rate limit, like /api/health/.
    auth_required = False
    rate_scope = None

    async def get(self) -> None:
        # The same for everyone and changed only by a deploy: clients and proxies may keep it
        # an hour (every other answer is private and no-store).
        self.set_header("Cache-Control", "public, max-age=3600")
        self.finish(_OPENAPI_JSON)


ROUTES = [
    (r"/api/openapi.json", OpenApiHandler),
]
