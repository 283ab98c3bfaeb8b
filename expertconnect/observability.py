"""Request ids and log lines: every HTTP request and WebSocket connection gets an id (a sane
incoming X-Request-ID, else a fresh one), carried in a context variable so that every log line
written while serving it names it; the log line of a failed request (log_failure, for the API
handlers and the WebSocket handlers alike, which must not import each other); and the logging
set-up (logging.format text | json)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType

import tornado.web

from expertconnect.errors import as_api_error

log = logging.getLogger(__name__)

# What a client or proxy may choose as its own id: short, and safe to echo and to log.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Label and log values stay bounded: any other verb a client sends is "other".
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# The route of an unknown URL: one value, whatever the path was.
UNMATCHED_ROUTE = "unmatched"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    method: str
    route: str
    user_id: int | None = None


# Set at the start of each request's own task; asyncio copies it into the tasks it starts.
_current: ContextVar[RequestContext | None] = ContextVar("expertconnect_request", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID if it is sane, else a new one (never echo arbitrary input)."""
    if header is not None and SANE_REQUEST_ID.fullmatch(header):
        return header
    # An id must be unique, not secret: 128 random bits without uuid4's os.urandom call per
    # request (about 3x cheaper; the generator is seeded from os.urandom at start-up).
    return f"{random.getrandbits(128):032x}"


def route_label(pattern: str) -> str:
    """A route pattern as people write it: /api/meetings/([^/]+)/ -> /api/meetings/{id}/."""
    return re.sub(r"\([^)]*\)", "{id}", pattern)


class RequestContextHandler(tornado.web.RequestHandler):
    """Base of every handler (REST and WebSocket): owns the request's id and context."""

    _request_context: RequestContext

    @property
    def request_context(self) -> RequestContext:
        # Built on first use: set_default_headers() needs it before initialize() has run.
        try:
            return self._request_context
        except AttributeError:
            method = self.request.method or ""
            # make_app's setting: handler class -> its route pattern, as {id} paths.
            routes = self.application.settings.get("route_names", {})
            self._request_context = RequestContext(
                request_id_from(self.request.headers.get("X-Request-ID")),
                method if method in KNOWN_METHODS else "other",
                routes.get(type(self), UNMATCHED_ROUTE),
            )
            return self._request_context

    @property
    def request_id(self) -> str:
        return self.request_context.request_id

    async def _execute(
        self, transforms: list[tornado.web.OutputTransform], *args: bytes, **kwargs: bytes
    ) -> None:
        # Tornado runs _execute as the request's own task, so the context set here covers
        # prepare, the verb, error rendering and the access log line, and is gone afterwards
        # (setting it in initialize() would leak it into the connection's next request).
        _current.set(self.request_context)
        await super()._execute(transforms, *args, **kwargs)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        log_failure(self, typ, value, tb)


def log_failure(
    handler: tornado.web.RequestHandler,
    typ: type[BaseException] | None,
    value: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """RequestHandler.log_exception for the API and the sockets. Client errors (anything with
    an API answer, a 4xx HTTPError) are answers, not failures: the access log has them.
    Tornado's own version would also write the full URI, whose query string can carry ?token=;
    this one writes the path."""
    if as_api_error(value) is not None:
        return
    if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
        return
    request = handler.request
    log.error(
        "%s %s (%s) failed",
        request.method,
        request.path,
        request.remote_ip,
        # `value` carries `tb` as its __traceback__, which logging reads from it (a tuple of
        # parts that may each be None is not one logging's types accept).
        exc_info=value,
    )


# ---------------------------------------------------------------------- logging set-up
class RequestContextFilter(logging.Filter):
    """Puts the current request's id, method, route and user on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is not None:
            record.request_id = context.request_id
            record.method = context.method
            record.route = context.route
            if context.user_id is not None:
                record.user_id = context.user_id
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_tag = f" [{request_id}]" if request_id else ""
        return super().format(record)


# Record attributes a JSON line carries when they are set (by the filter or the access log).
JSON_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "user_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then what is known of the
    request (request_id, method, route, status, duration_ms, user_id) and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JSON_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(format: str = "text", level: str = "INFO") -> None:
    """Replace the root logger's handlers with one writing to stderr in `format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Neither formatter writes where a record was made (file, line, function), nor its thread
    # or process: logging need not collect them for every record (the optimizations of the
    # logging HOWTO). The stack walk alone was a quarter of each access log line's cost.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
