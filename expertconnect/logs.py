"""Logging of failed requests, shared by the API handlers and the WebSocket handlers (which
must not import each other)."""

from __future__ import annotations

import logging
from types import TracebackType

import tornado.web

from expertconnect.errors import as_api_error

log = logging.getLogger(__name__)


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
        exc_info=(typ, value, tb),
    )
