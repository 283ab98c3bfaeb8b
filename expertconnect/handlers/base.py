"""BaseHandler: the cross-cutting work of every API request (rate limit, then authentication),
JSON in and out, and the one place errors are rendered in the spec's shapes."""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from typing import Any
from urllib.parse import urlencode

import asyncpg
import tornado.web

from expertconnect import wire
from expertconnect.auth import InvalidToken
from expertconnect.db import DatabaseUnavailable
from expertconnect.db.queries import health as health_q
from expertconnect.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    as_api_error,
)
from expertconnect.ids import parse_id
from expertconnect.logs import log_failure
from expertconnect.ratelimit import TokenBucketLimiter
from expertconnect.services import IPNetwork, Services
from expertconnect.validation import Form

# List endpoints answer pages of PAGE_DEFAULT rows unless asked for up to PAGE_MAX.
PAGE_DEFAULT, PAGE_MAX = 50, 200
# The verbs a route can have, in the order a 405's Allow header lists them. OPTIONS is left out:
# it answers only CORS preflights from configured origins (404 for everyone else).
REST_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def client_address(peer: str, forwarded_for: list[str], trusted: list[IPNetwork]) -> str:
    """The socket's peer, unless it is a trusted proxy: then the right-most X-Forwarded-For hop
    that is not itself a trusted proxy. Headers from an untrusted peer are never believed."""

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not is_trusted(peer):
        return peer
    hops = [h.strip() for header in forwarded_for for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage in the header: fall back to what we know
    return peer


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Bodies are streamed so that prepare() (size check, rate limit, authentication) runs
    before any of the body is read: a refused request never costs its upload."""

    # Per endpoint: does it need a token, and which rate-limit bucket does it draw from.
    auth_required = True
    rate_scope: str | None = "default"  # "default" (per user), "auth" (per address), None

    def initialize(self, services: Services) -> None:
        self.services = services
        self.db = services.db
        self.token_claims = None
        # CORS and X-RateLimit-* headers of this request: re-applied on the error path, since
        # send_error clears headers.
        self._sticky_headers: dict[str, str] = {}
        origin = self.request.headers.get("Origin")
        if origin and origin in services.config.server.cors_origins:
            self._add_sticky_headers(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Expose-Headers": "X-RateLimit-Limit, X-RateLimit-Remaining, "
                    "X-RateLimit-Reset, Retry-After, Link",
                    "Vary": "Origin",
                }
            )
        self._body_chunks: list[bytes] = []

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    async def options(self, *args) -> None:
        """CORS preflight: answered only for configured origins, without authentication."""
        if "Access-Control-Allow-Origin" not in self._headers:
            raise NotFound("Not found")
        self.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    def compute_etag(self) -> None:
        # Responses are private and no-store: hashing every body would be wasted work.
        return None

    async def prepare(self) -> None:
        self._limit_body_size()
        if self.request.method == "OPTIONS":
            return
        if self.rate_scope == "auth":
            self._apply_rate_limit(self.services.limiters.auth, self.client_address)
        if self.auth_required:
            claims = self._decode_bearer_token()
            if self.rate_scope == "default":
                self._apply_rate_limit(self.services.limiters.default, claims.user_id)
            user = await self.services.auth_cache.user_for_token(claims.user_id, claims.jti)
            if user is None:
                raise Unauthorized("Invalid or expired token")
            self.token_claims = claims
            self.current_user = user

    def _limit_body_size(self) -> None:
        limit = self.services.config.server.max_body_size
        declared = self.request.headers.get("Content-Length", "0")
        if not declared.isdigit() or int(declared) > limit:
            raise PayloadTooLarge()
        # A chunked body past the limit is cut off by Tornado itself (a bare 400).
        self.request.connection.set_max_body_size(limit)

    def data_received(self, chunk: bytes) -> None:
        self._body_chunks.append(chunk)

    def _decode_bearer_token(self):
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authentication credentials were not provided")
        try:
            return self.services.tokens.decode(token.strip())
        except InvalidToken:
            raise Unauthorized("Invalid or expired token") from None

    def _apply_rate_limit(self, limiter: TokenBucketLimiter, identity: Hashable) -> None:
        decision = limiter.hit(identity)
        self._add_sticky_headers(decision.headers())
        if not decision.allowed:
            raise TooManyRequests(decision.headers())

    def _add_sticky_headers(self, headers: dict[str, str]) -> None:
        self._sticky_headers.update(headers)
        for name, value in headers.items():
            self.set_header(name, value)

    def require_quota(self, limiter: TokenBucketLimiter, identity: Hashable) -> None:
        """429 if the quota `limiter` of `identity` is used up; charge it with charge_quota()
        once the work has succeeded, so refused attempts cost nothing."""
        decision = limiter.status(identity)
        if not decision.allowed:
            raise TooManyRequests(decision.headers())

    def charge_quota(self, limiter: TokenBucketLimiter, identity: Hashable) -> None:
        limiter.hit(identity)

    @property
    def client_address(self) -> str:
        return client_address(
            self.request.remote_ip,
            self.request.headers.get_list("X-Forwarded-For"),
            self.services.trusted_proxies,
        )

    # ------------------------------------------------------------------ request helpers
    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 saying why not."""
        raw = b"".join(self._body_chunks)
        if not raw:
            raise BadRequest("Request body must be a JSON object")
        try:
            body = wire.loads(raw)
        except wire.MalformedJSON as exc:
            raise BadRequest(str(exc)) from None
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        return body

    def form(self) -> Form:
        return Form(self.json_body())

    @staticmethod
    def page(form: Form) -> dict:
        """The list cursor every list endpoint takes: `limit` (1..200, default 50) and
        `before_id` (only rows with a smaller id); passed to list_ queries as keywords."""
        limit = form.integer("limit", required=False, min_value=1, max_value=PAGE_MAX)
        before_id = form.object_id("before_id", required=False)
        return {"limit": limit or PAGE_DEFAULT, "before_id": before_id}

    def write_page(self, rows: list[dict], page: dict) -> None:
        """A list page, still a plain JSON array; when it is full, a Link header names the next
        page (the same query with before_id set to the last row's id)."""
        if rows and len(rows) == page["limit"]:
            query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
            query.update(before_id=str(rows[-1]["id"]), limit=str(page["limit"]))
            self.set_header("Link", f'<{self.request.path}?{urlencode(query)}>; rel="next"')
        self.write_json(rows)

    @staticmethod
    def path_id(raw: str, not_found: str) -> int:
        """A positive int64 id from the URL; anything no row can have is a 404 with the same
        body as a missing row."""
        parsed = parse_id(raw)
        if parsed is None:
            raise NotFound(not_found)
        return parsed

    def query_form(self) -> Form:
        return Form(
            {k: self.get_query_argument(k) for k in self.request.query_arguments}, from_query=True
        )

    @property
    def user_id(self) -> int:
        return self.current_user["id"]

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(wire.dumps(payload))

    # ------------------------------------------------------------------ errors
    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        for name, value in self._sticky_headers.items():
            self.set_header(name, value)
        answer = as_api_error(exc)
        if answer is not None:
            self.set_status(answer.status)
            for name, value in answer.headers.items():
                self.set_header(name, value)
            body = answer.body()
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            if status_code == 405:
                body = MethodNotAllowed().body()
            elif status_code == 404:
                body = {"error": "Not found"}
            else:
                body = {"error": exc.log_message or self._reason}
        else:
            body = {"error": "Internal server error"}
        if self.get_status() == 405:
            # RFC 9110 15.5.6: a 405 lists the methods the resource does have.
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.finish(wire.dumps(body))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The REST verbs this handler implements (Tornado's default for the others is 405)."""
        return [
            m
            for m in REST_METHODS
            if getattr(cls, m.lower()) is not getattr(tornado.web.RequestHandler, m.lower())
        ]

    def log_exception(self, typ, value, tb) -> None:
        log_failure(self, typ, value, tb)


class NotFoundHandler(BaseHandler):
    """Unknown URLs: a JSON 404 for every method."""

    auth_required = False
    rate_scope = None

    async def prepare(self) -> None:
        raise NotFound("Not found")


class HealthHandler(BaseHandler):
    auth_required = False
    rate_scope = None

    async def get(self) -> None:
        try:
            await health_q.ping(self.db)
        except (DatabaseUnavailable, asyncpg.PostgresError):
            self.write_json({"status": "unavailable"}, status=503)
            return
        self.write_json({"status": "ok"})


ROUTES = [
    (r"/api/health/", HealthHandler),
]
