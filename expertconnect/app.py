"""make_app: the one place that joins the routes to their handlers."""

from __future__ import annotations

import logging

import tornado.web

from expertconnect.handlers import (
    base,
    credits,
    docs,
    experts,
    meetings,
    messages,
    skills,
    users,
    web,
)
from expertconnect.handlers.base import NotFoundHandler
from expertconnect.realtime import sockets
from expertconnect.services import Services

access_log = logging.getLogger("tornado.access")

HANDLER_MODULES = [base, docs, users, skills, credits, meetings, messages, experts, sockets, web]


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """The access log without the query string: it can carry ?token=."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    access_log.log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        request.path,
        request.remote_ip,
        1000.0 * request.request_time(),
    )


def make_app(services: Services) -> tornado.web.Application:
    routes = [
        (pattern, handler, {"services": services})
        for module in HANDLER_MODULES
        for pattern, handler in module.ROUTES
    ]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args={"services": services},
        log_function=_log_request,
        compress_response=False,
        websocket_ping_interval=services.config.realtime.ping_interval,
        websocket_ping_timeout=services.config.realtime.ping_timeout,
        websocket_max_message_size=services.config.realtime.max_frame_bytes,
    )
