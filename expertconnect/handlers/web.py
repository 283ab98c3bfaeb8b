"""The browser side, served as static files by this process: the web client at / and the API
docs at /api/docs/, their assets under /static/ (expertconnect/static/, shipped in the package),
with a Content-Security-Policy that lets a page load and connect only to this server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from expertconnect import wire
from expertconnect.observability import RequestContextHandler
from expertconnect.services import Services

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

# Vendored packages live under a versioned folder (vendor/<name>-<version>/), so a URL's bytes
# never change and browsers may keep them a year; everything else is revalidated (ETag, 304).
VENDOR_PREFIX = "vendor/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def content_security_policy(host: str) -> str:
    """Only this origin: no inline script or style, no eval, no other host. connect-src names
    the WebSocket origin explicitly (ws:/wss: of this host), which 'self' covers only in recent
    browsers. Data URIs are allowed for images: Swagger UI's stylesheet draws its icons so."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class StaticHandler(RequestContextHandler, tornado.web.StaticFileHandler):
    """Files under expertconnect/static/; GET and HEAD only, no token, no rate limit."""

    # Tornado calls initialize() with the route's arguments, so each handler names its own
    # (RequestHandler declares it Callable[..., None]); StaticFileHandler's are path and
    # default_filename, which the route does not give.
    def initialize(self, services: Services) -> None:  # type: ignore[override]
        super().initialize(path=str(STATIC_DIR))

    def set_default_headers(self) -> None:
        self.set_header("X-Request-ID", self.request_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", content_security_policy(self.request.host or ""))

    def set_extra_headers(self, path: str) -> None:
        self.set_header(
            "Cache-Control", IMMUTABLE if path.startswith(VENDOR_PREFIX) else REVALIDATE
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Like the API: a JSON error, never Tornado's HTML page.
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        body = {"error": "Not found" if status_code == 404 else self._reason}
        if status_code == 405:
            body = {"error": "Method not allowed"}
            self.set_header("Allow", "GET, HEAD")
        self.finish(wire.dumps(body))


class PageHandler(StaticHandler):
    """One HTML file at a fixed URL (the subclass names it)."""

    page = ""

    async def get(self, path: str = "", include_body: bool = True) -> None:
        await super().get(self.page, include_body)


class ClientPage(PageHandler):
    page = "index.html"


class DocsPage(PageHandler):
    page = "docs/index.html"


ROUTES = [
    (r"/", ClientPage),
    (r"/api/docs/", DocsPage),
    (r"/static/(.+)", StaticHandler),
]
