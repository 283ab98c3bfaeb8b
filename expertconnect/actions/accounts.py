"""Registration (user + credit account + initial ledger entry, one transaction), login, logout,
and profile changes (which, like logout, this process's auth cache learns at once)."""

from __future__ import annotations

import datetime as dt

import asyncpg

from expertconnect.actions.errors import BadCredentials, CallerGone, InvalidField
from expertconnect.auth import TokenClaims
from expertconnect.db import channels
from expertconnect.db.queries import credits as credits_q
from expertconnect.db.queries import events as events_q
from expertconnect.db.queries import users as users_q
from expertconnect.services import Services

INITIAL_CREDIT_DESCRIPTION = "Initial free credit"

_UNIQUE_FIELDS = {
    "users_username_normalized_key": ("username", "A user with that username already exists."),
    "users_email_normalized_key": ("email", "A user with that email already exists."),
}


def _auth_payload(user: dict, token: str) -> dict:
    return {
        "id": user["id"],
        "username": user["username"],
        "email": user["email"],
        "first_name": user["first_name"],
        "last_name": user["last_name"],
        "token": token,
    }


async def register(
    services: Services, *, username: str, email: str, password: str, first_name: str, last_name: str
) -> dict:
    password_hash = await services.passwords.hash(password)
    return await register_hashed(
        services,
        username=username,
        email=email,
        password_hash=password_hash,
        first_name=first_name,
        last_name=last_name,
    )


async def register_hashed(
    services: Services,
    *,
    username: str,
    email: str,
    password_hash: str,
    first_name: str,
    last_name: str,
) -> dict:
    """register() with the password already hashed by services.passwords: the demo data hashes
    its one shared password once for all its accounts instead of once per account."""
    initial = services.config.credits.initial_free
    try:
        async with services.db.transaction() as conn:
            user = await users_q.insert_user(
                conn,
                username=username,
                email=email,
                password_hash=password_hash,
                first_name=first_name,
                last_name=last_name,
            )
            await credits_q.insert_account(conn, user["id"], initial)
            if initial > 0:
                await credits_q.insert_transaction(
                    conn,
                    user_id=user["id"],
                    transaction_type="initial",
                    amount=initial,
                    description=INITIAL_CREDIT_DESCRIPTION,
                )
    except asyncpg.UniqueViolationError as exc:
        field, message = _UNIQUE_FIELDS.get(
            exc.constraint_name or "", ("username", "Already exists.")
        )
        raise InvalidField(field, message) from None
    return _auth_payload(user, services.tokens.issue(user["id"]))


async def login(services: Services, *, username: str, password: str) -> dict:
    account = await users_q.get_login(services.db, username)
    # Checked even for an unknown username (against a decoy hash): same answer, same cost.
    ok = await services.passwords.check(password, account["password_hash"] if account else None)
    if not ok or account is None:  # no account: never ok (checked against the decoy)
        raise BadCredentials("Invalid username or password")
    return _auth_payload(account, services.tokens.issue(account["id"]))


async def logout(services: Services, claims: TokenClaims) -> None:
    expires_at = dt.datetime.fromtimestamp(claims.expires_at, dt.UTC)
    gone = False
    try:
        await users_q.insert_revoked_token(services.db, claims.jti, claims.user_id, expires_at)
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name != "revoked_tokens_user_id_fkey":
            raise
        # Deleted meanwhile: no revocation to record (the token names no user any more), but
        # the sockets it opened are closed all the same.
        gone = True
    services.auth_cache.token_revoked(claims.jti, claims.expires_at)
    services.hub.close_token(claims.user_id, claims.jti)
    if services.relay is not None:
        await events_q.notify_control(
            services.db, channels.encode_logout(claims.user_id, claims.jti)
        )
    if gone:
        raise CallerGone()


async def update_profile(
    services: Services,
    user_id: int,
    *,
    first_name: str | None,
    last_name: str | None,
    bio: str | None,
    profile_picture: str | None,
    timezone: str | None,
    credits_per_hour: int | None,
) -> dict:
    """Set the fields given (None: unchanged) and serve the new row from this process's auth
    cache at once (other processes hear of it from the 0005 trigger). Raises
    asyncpg.InvalidParameterValueError for a time zone PostgreSQL does not know, CallerGone if
    the user was deleted meanwhile."""
    user = await users_q.update_profile(
        services.db,
        user_id,
        first_name=first_name,
        last_name=last_name,
        bio=bio,
        profile_picture=profile_picture,
        timezone=timezone,
        credits_per_hour=credits_per_hour,
    )
    if user is None:  # deleted since the request was authenticated
        raise CallerGone()
    services.auth_cache.user_changed(user)
    return user
