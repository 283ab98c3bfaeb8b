"""GET /metrics: this process's Prometheus metrics, for server.metrics_allow networks only."""

from __future__ import annotations

import ipaddress

from expertconnect.errors import NotFound
from expertconnect.handlers.base import BaseHandler
from expertconnect.metrics import CONTENT_TYPE


class MetricsHandler(BaseHandler):
    # Not part of the REST API: no token, no rate limit, and hidden from other networks.
    auth_required = False
    rate_scope = None

    async def prepare(self) -> None:
        # Before anything else, for every method: to others it is the 404 of an unknown URL.
        if not self._allowed():
            raise NotFound("Not found")
        await super().prepare()

    def _allowed(self) -> bool:
        # The client's address, not the socket's peer: behind a trusted proxy on this host
        # the peer is always loopback.
        try:
            client = ipaddress.ip_address(self.client_address)
        except ValueError:
            return False
        if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped:
            client = client.ipv4_mapped  # an IPv4 client of a dual-stack socket
        return any(
            client in ipaddress.ip_network(network, strict=False)
            for network in self.services.config.server.metrics_allow
        )

    async def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.services.metrics.exposition())


ROUTES = [
    (r"/metrics", MetricsHandler),
]
