"""BaseHandler: the cross-cutting work of every API request (rate limit, then authentication),
JSON in and out, and the one place errors are rendered in the spec's shapes."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Any, TypedDict, TypeVar
from urllib.parse import urlencode

import asyncpg
import tornado.routing
import tornado.web

from expertconnect import migrate, wire
from expertconnect.actions import idempotency
from expertconnect.auth import InvalidToken, TokenClaims
from expertconnect.db import DatabaseUnavailable
from expertconnect.db.queries import JsonPage
from expertconnect.db.queries import health as health_q
from expertconnect.errors import (
    BEARER_EXPECTED,
    NO_CREDENTIALS,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    as_api_error,
)
from expertconnect.ids import parse_id
from expertconnect.observability import RequestContextHandler, route_label
from expertconnect.ratelimit import TokenBucketLimiter
from expertconnect.services import IPNetwork, Services
from expertconnect.validation import Form

# List endpoints answer pages of PAGE_DEFAULT rows unless asked for up to PAGE_MAX.
PAGE_DEFAULT, PAGE_MAX = 50, 200
# The verbs a route can have, in the order a 405's Allow header lists them. OPTIONS is left out:
# it answers only CORS preflights from configured origins (403 for everyone else).
REST_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Migrations this code expects applied: /api/health/ is not ready until they all are.
EXPECTED_MIGRATIONS = frozenset(m.name for m in migrate.discover())
# A path echoed in a 404's hint only if it holds nothing but these (never arbitrary input).
_ECHOABLE_PATH = re.compile(r"[A-Za-z0-9/._~-]{1,200}")


# What an action returns, which BaseHandler.answer renders.
_Result = TypeVar("_Result")


class Page(TypedDict):
    """A list endpoint's cursor, passed to list_ queries as keywords."""

    limit: int
    before_id: int | None


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


def is_json_media_type(content_type: str) -> bool:
    """application/json, or a +json structured syntax type (RFC 6839, e.g.
    application/merge-patch+json), with no charset or charset=utf-8: JSON is UTF-8 (RFC 8259)."""
    media_type, _, parameters = content_type.partition(";")
    kind = media_type.strip().lower()
    if kind != "application/json" and not (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return False
    return True


@tornado.web.stream_request_body
class BaseHandler(RequestContextHandler):
    """Bodies are streamed so that prepare() (size check, rate limit, authentication) runs
    before any of the body is read: a refused request never costs its upload."""

    # Per endpoint: does it need a token, and which rate-limit bucket does it draw from.
    auth_required = True
    rate_scope: str | None = "default"  # "default" (per user), "auth" (per address), None
    # Verbs that honour an Idempotency-Key header (answered through answer()); others ignore it.
    idempotent_methods: tuple[str, ...] = ()

    def initialize(self, services: Services) -> None:
        self.services = services
        self.db = services.db
        self.token_claims: TokenClaims | None = None
        self.idempotency_key: str | None = None
        # CORS and X-RateLimit-* headers of this request: re-applied on the error path, since
        # send_error clears headers.
        self._sticky_headers: dict[str, str] = {}
        origin = self.request.headers.get("Origin")
        if origin and origin in services.config.server.cors_origins:
            self._add_sticky_headers(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Expose-Headers": "X-RateLimit-Limit, X-RateLimit-Remaining, "
                    "X-RateLimit-Reset, Retry-After, Link, X-Request-ID, Idempotent-Replayed",
                    "Vary": "Origin",
                }
            )
        self._body_chunks: list[bytes] = []

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Request-ID", self.request_id)

    async def options(self, *args: str) -> None:
        """CORS preflight: answered only for configured origins, without authentication; for
        anyone else a 403 saying why, which a browser's console shows."""
        if "Access-Control-Allow-Origin" not in self._headers:
            if not self.services.config.server.cors_origins:
                raise Forbidden("CORS is not enabled on this server")
            raise Forbidden("CORS is not enabled for this origin")
        self.set_header("Access-Control-Allow-Methods", ", ".join(self.allowed_methods()))
        self.set_header(
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type, X-Request-ID, Idempotency-Key",
        )
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
            self.request_context.user_id = claims.user_id
        if self.request.method in self.idempotent_methods:
            # Checked before the body is read: a bad key costs no upload.
            self.idempotency_key = idempotency.parse_key(
                self.request.headers.get(idempotency.KEY_HEADER)
            )

    def _limit_body_size(self) -> None:
        limit = self.services.config.server.max_body_size
        declared = self.request.headers.get("Content-Length", "0")
        if not declared.isdigit() or int(declared) > limit:
            raise PayloadTooLarge()
        # A chunked body past the limit is cut off by Tornado itself (a bare 400). The method is
        # HTTP1Connection's, which Tornado's docs tell stream_request_body handlers to call;
        # request.connection is typed as the abstract, optional HTTPConnection.
        self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self._body_chunks.append(chunk)

    def _decode_bearer_token(self) -> TokenClaims:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized(BEARER_EXPECTED if header.strip() else NO_CREDENTIALS)
        if not token.strip():
            raise Unauthorized(NO_CREDENTIALS)
        try:
            return self.services.tokens.decode(token.strip())
        except InvalidToken:
            raise Unauthorized("Invalid or expired token") from None

    def _apply_rate_limit(self, limiter: TokenBucketLimiter, identity: Hashable) -> None:
        decision = limiter.hit(identity)
        self._add_sticky_headers(decision.headers())
        if not decision.allowed:
            self._count_refusal(limiter)
            raise TooManyRequests(decision.headers())

    def _add_sticky_headers(self, headers: dict[str, str]) -> None:
        self._sticky_headers.update(headers)
        for name, value in headers.items():
            self.set_header(name, value)

    def take_quota(self, limiter: TokenBucketLimiter, identity: Hashable) -> None:
        """Take one unit of the quota `limiter` of `identity` before the work, or 429 if it is
        used up. Taken, not just checked: concurrent requests that all passed a check made
        before any of them was charged would exceed the quota. refund_quota() gives it back."""
        decision = limiter.hit(identity)
        if not decision.allowed:
            self._count_refusal(limiter)
            raise TooManyRequests(decision.headers())

    def refund_quota(self, limiter: TokenBucketLimiter, identity: Hashable) -> None:
        limiter.refund(identity)

    @contextlib.contextmanager
    def quota(self, limiter: TokenBucketLimiter, identity: Hashable) -> Iterator[None]:
        """A quota on work that succeeds: taken before the block, refunded if the block raises
        (a refused or failed attempt costs nothing)."""
        self.take_quota(limiter, identity)
        try:
            yield
        except BaseException:
            self.refund_quota(limiter, identity)
            raise

    def _count_refusal(self, limiter: TokenBucketLimiter) -> None:
        self.services.metrics.rate_limited.labels(self.services.limiters.scope_of(limiter)).inc()

    @property
    def client_address(self) -> str:
        return client_address(
            self.request.remote_ip or "",  # always set for a request from a socket
            self.request.headers.get_list("X-Forwarded-For"),
            self.services.trusted_proxies,
        )

    # ------------------------------------------------------------------ request helpers
    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 saying why not. A body declared as
        anything but JSON is a 415; one with no (or an empty) Content-Type is read as JSON."""
        declared = self.request.headers.get("Content-Type", "").strip()
        if declared and not is_json_media_type(declared):
            raise UnsupportedMediaType("Content-Type must be application/json (UTF-8)")
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
    def page(form: Form) -> Page:
        """The list cursor every list endpoint takes: `limit` (1..200, default 50) and
        `before_id` (only rows with a smaller id); passed to list_ queries as keywords."""
        limit = form.integer("limit", required=False, min_value=1, max_value=PAGE_MAX)
        before_id = form.object_id("before_id", required=False)
        return {"limit": limit or PAGE_DEFAULT, "before_id": before_id}

    def write_json_page(self, json_page: JsonPage, page: Page) -> None:
        """A list page that PostgreSQL wrote as the API's JSON array, sent as it is; when it is
        full, a Link header names the next page (the same query with before_id set to the last
        row's id)."""
        if json_page.rows and json_page.rows == page["limit"]:
            self._link_next_page(json_page.last_id, page["limit"])
        self.finish(json_page.body)

    def _link_next_page(self, last_id: int | None, limit: int) -> None:
        query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        query.update(before_id=str(last_id), limit=str(limit))
        self.set_header("Link", f'<{self.request.path}?{urlencode(query)}>; rel="next"')

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

    async def answer(
        self,
        action: Callable[[idempotency.Idempotency | None], Awaitable[_Result]],
        status: int = 200,
        payload: Callable[[_Result], Any] = lambda result: result,
    ) -> None:
        """Run `action(key)`, an action called with this request's Idempotency-Key (or None),
        and answer `status` with payload(its result). With a key, the action's transaction
        stores this very answer before it commits; a retry of the same request gets it back,
        byte for byte, with Idempotent-Replayed: true, and nothing is done again."""
        if self.idempotency_key is None:
            self.write_json(payload(await action(None)), status)
            return
        key = idempotency.Idempotency(
            self.user_id,
            self.idempotency_key,
            idempotency.request_hash(self.request.method, self.request.path, self.json_body()),
            status,
            payload,
        )
        try:
            result = await action(key)
        except idempotency.Replayed as replayed:
            answer = replayed.answer
            self.set_header(idempotency.REPLAYED_HEADER, "true")
        else:
            # None if the action committed nothing: a message repeated by its client_msg_id.
            answer = key.answer or idempotency.Answer(status, wire.dumps(payload(result)))
        self.set_status(answer.status)
        self.finish(answer.body)

    # ------------------------------------------------------------------ errors
    def write_error(self, status_code: int, **kwargs: Any) -> None:
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


class NotFoundHandler(BaseHandler):
    """Unknown URLs: a JSON 404 for every method; if the path names a route once a trailing
    slash is added, the error says so."""

    auth_required = False
    rate_scope = None

    async def prepare(self) -> None:
        raise NotFound(self._missing_slash_hint() or "Not found")

    def _missing_slash_hint(self) -> str | None:
        path = self.request.path
        if path.endswith("/"):
            return None
        candidate = path + "/"
        for rule in self.application.wildcard_router.rules:
            matcher = rule.matcher
            if isinstance(matcher, tornado.routing.PathMatches) and matcher.regex.match(candidate):
                if not _ECHOABLE_PATH.fullmatch(candidate):
                    # The pattern instead, e.g. /api/meetings/{id}/.
                    candidate = route_label(matcher.regex.pattern.removesuffix("$"))
                return f"Not found. Did you mean {candidate}?"
        return None


class HealthHandler(BaseHandler):
    """Ready: the database answers and every migration this code expects is applied."""

    auth_required = False
    rate_scope = None

    async def get(self) -> None:
        try:
            applied = await health_q.list_applied_migrations(self.db)
        except (DatabaseUnavailable, asyncpg.PostgresError):
            self.write_json({"status": "unavailable"}, status=503)
            return
        if not EXPECTED_MIGRATIONS <= applied:
            self.write_json({"status": "migrations_pending"}, status=503)
            return
        self.write_json({"status": "ok"})


class LivenessHandler(BaseHandler):
    """Live: the process answers; the database is not asked (a restart would not mend it)."""

    auth_required = False
    rate_scope = None

    async def get(self) -> None:
        self.write_json({"status": "ok"})


ROUTES = [
    (r"/api/health/", HealthHandler),
    (r"/api/health/live/", LivenessHandler),
]
