"""What authenticating a request needs, kept in memory: user profiles by id and the revoked
token ids, so that an authenticated GET needs no query for its authentication.

It is only trusted while it hears every change. Triggers on users and revoked_tokens
(0005_auth_cache_notify.sql) pg_notify on commit, whoever the writer is: this process, another
one, or a DBA in psql. The cache hears them through the process's LISTEN connection
(db/listener.py); while that connection is down every lookup goes to the database. This
process's own writes (logout, profile updates) are applied at once, before it answers."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict

import asyncpg

from expertconnect.db import Database, Row, channels
from expertconnect.db.listener import Listener, Subscription
from expertconnect.db.queries import users as users_q

log = logging.getLogger(__name__)


class AuthCache:
    def __init__(self, listener: Listener, db: Database, max_users: int):
        self.listener = listener
        self.db = db
        self.max_users = max_users
        self._users: OrderedDict[int, Row] = OrderedDict()
        # Revoked token id -> its expiry (epoch seconds); past that, decoding refuses the token
        # anyway and the entry can go.
        self._revoked: dict[uuid.UUID, float] = {}
        # Bumped by every invalidation: a row read from the database before an invalidation
        # arrived is not cached after it.
        self._generation = 0
        if self.enabled:
            listener.subscribe(
                Subscription({channels.AUTH: self._on_notify}, on_listening=self._reload)
            )

    @property
    def enabled(self) -> bool:
        return self.max_users > 0

    @property
    def _live(self) -> bool:
        """Hearing every change right now?"""
        return self.enabled and self.listener.live

    async def _reload(self, conn: asyncpg.Connection) -> None:
        """On a new LISTEN connection, before it counts as live: load the revocations, and
        forget the users (changes to them may have been missed). Nothing committed from the
        LISTEN on is missed. Revocations are only ever added (until they expire)."""
        self._revoked.update(
            {
                r["jti"]: r["expires_at"].timestamp()
                for r in await users_q.list_live_revocations(conn)
            }
        )
        self._users.clear()
        self._generation += 1

    def _on_notify(self, payload: str) -> None:
        change = channels.decode_auth(payload)
        self._generation += 1
        if isinstance(change, channels.UserChanged):
            self._users.pop(change.user_id, None)
        elif isinstance(change, channels.TokenRevoked):
            self._revoked[change.jti] = change.expires_at

    async def user_for_token(self, user_id: int, jti: uuid.UUID) -> Row | None:
        """The user a valid token names, or None if it is revoked or the user is gone."""
        if not self._live:
            return await users_q.get_user_with_live_token(self.db, user_id, jti)
        if jti in self._revoked:
            return None
        user = self._users.get(user_id)
        if user is not None:
            return user
        generation = self._generation
        user = await users_q.get_user_with_live_token(self.db, user_id, jti)
        if user is not None and self._live and generation == self._generation:
            self._remember(user)
        return user

    async def still_valid(self, user_id: int, jti: uuid.UUID) -> bool:
        """Is a token accepted a moment ago still unrevoked (and its user still there)? For
        a re-check after the socket it opened joined the hub: while the cache hears every
        change this answers from memory, without awaiting (so nothing runs between the
        registration and the check); otherwise it asks the database."""
        if self._live:
            return jti not in self._revoked
        return await users_q.get_user_with_live_token(self.db, user_id, jti) is not None

    def _remember(self, user: Row) -> None:
        self._users[user["id"]] = user
        if len(self._users) > self.max_users:
            self._users.popitem(last=False)

    def user_changed(self, user: Row) -> None:
        """This process just committed a change to `user`: serve the new row from now on."""
        self._generation += 1
        if self._live:
            self._remember(user)

    def token_revoked(self, jti: uuid.UUID, expires_at: float) -> None:
        """This process just committed a revocation: refuse the token from now on."""
        self._generation += 1
        self._revoked[jti] = expires_at

    def prune(self, now: float) -> None:
        """Forget revocations of tokens that have expired by themselves."""
        self._revoked = {jti: exp for jti, exp in self._revoked.items() if exp > now}
