"""make_app: the one place that joins the routes to their handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable

import tornado.web

from expertconnect import observability
from expertconnect.handlers import (
    base,
    credits,
    docs,
    experts,
    meetings,
    messages,
    monitoring,
    skills,
    users,
    web,
)
from expertconnect.handlers.base import NotFoundHandler
from expertconnect.metrics import Metrics
from expertconnect.realtime import sockets
from expertconnect.services import Services

access_log = logging.getLogger("tornado.access")

HANDLER_MODULES = [
    base,
    docs,
    users,
    skills,
    credits,
    meetings,
    messages,
    experts,
    sockets,
    monitoring,
    web,
]


def _request_logger(
    metrics: Metrics | None,
) -> Callable[[observability.RequestContextHandler], None]:
    def log_request(handler: observability.RequestContextHandler) -> None:
        """The access log without the query string (it can carry ?token=), and the request's
        metrics unless they are off. A 4xx is an answer, not a failure of ours: INFO like a
        2xx."""
        status = handler.get_status()
        request = handler.request
        seconds = request.request_time()
        context = handler.request_context
        if metrics is not None:
            metrics.observe_request(context.route, context.method, status, seconds)
        access_log.log(
            logging.INFO if status < 500 else logging.ERROR,
            "%d %s %s (%s) %.2fms",
            status,
            request.method,
            request.path,
            request.remote_ip,
            1000.0 * seconds,
            extra={"status": status, "duration_ms": round(1000.0 * seconds, 2)},
        )

    return log_request


def make_app(services: Services) -> tornado.web.Application:
    routes = [
        (pattern, handler, {"services": services})
        for module in HANDLER_MODULES
        for pattern, handler in module.ROUTES
    ]
    route_names = {handler: observability.route_label(pattern) for pattern, handler, _ in routes}
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args={"services": services},
        # server.metrics_allow empty: nobody may read the request metrics, so none are kept.
        log_function=_request_logger(
            services.metrics if services.config.server.metrics_allow else None
        ),
        route_names=route_names,  # read by observability.RequestContextHandler
        compress_response=False,
        websocket_ping_interval=services.config.realtime.ping_interval,
        websocket_ping_timeout=services.config.realtime.ping_timeout,
        websocket_max_message_size=services.config.realtime.max_frame_bytes,
    )
