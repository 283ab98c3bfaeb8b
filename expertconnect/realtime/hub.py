"""The registry of connected sockets: user_id -> open sockets, and delivery of recorded events
to them. It imports nothing else of the project; sockets are anything with `deliver(event)`
and `close(code, reason)`."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class Addressed(Protocol):
    """An event as the hub sees it: for the sockets of one user."""

    @property
    def user_id(self) -> int: ...


EventT = TypeVar("EventT", bound=Addressed)
EventT_contra = TypeVar("EventT_contra", bound=Addressed, contravariant=True)


class Socket(Protocol[EventT_contra]):
    @property
    def token_jti(self) -> object: ...  # the id of the token it authenticated with

    def deliver(self, event: EventT_contra) -> bool: ...  # False: the socket is gone or too slow
    def close(self, code: int, reason: str) -> None: ...


class Hub(Generic[EventT]):
    def __init__(self, max_sockets_per_user: int = 10):
        self.max_sockets_per_user = max_sockets_per_user
        # Insertion-ordered so the oldest socket of a user is the first one.
        self._sockets: dict[int, OrderedDict[int, Socket[EventT]]] = {}

    def add(self, user_id: int, socket: Socket[EventT]) -> None:
        sockets = self._sockets.setdefault(user_id, OrderedDict())
        sockets[id(socket)] = socket
        while len(sockets) > self.max_sockets_per_user:
            _, oldest = sockets.popitem(last=False)
            oldest.close(4429, "Too many open sockets for this user; closing the oldest")

    def remove(self, user_id: int, socket: Socket[EventT]) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.pop(id(socket), None)
            if not sockets:
                del self._sockets[user_id]

    def sockets_of(self, user_id: int) -> list[Socket[EventT]]:
        return list(self._sockets.get(user_id, {}).values())

    def connected_users(self) -> int:
        return len(self._sockets)

    def socket_count(self) -> int:
        return sum(len(sockets) for sockets in self._sockets.values())

    def close_token(
        self, user_id: int, jti: object, code: int = 4401, reason: str = "Logged out"
    ) -> int:
        """Close every socket of the user that authenticated with token `jti`."""
        doomed = [s for s in self.sockets_of(user_id) if s.token_jti == jti]
        for socket in doomed:
            self.remove(user_id, socket)
            socket.close(code, reason)
        return len(doomed)

    def close_all(self, code: int, reason: str) -> None:
        for user_id in list(self._sockets):
            for socket in self.sockets_of(user_id):
                socket.close(code, reason)
        self._sockets.clear()

    def publish(self, events: Iterable[EventT]) -> None:
        """Deliver committed events to the local sockets of their users."""
        for event in events:
            for socket in self.sockets_of(event.user_id):
                if not socket.deliver(event):
                    self.remove(event.user_id, socket)
