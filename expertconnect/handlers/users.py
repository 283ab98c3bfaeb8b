"""Registration, login, logout and the current user's profile."""

from __future__ import annotations

import re
import zoneinfo
from typing import TypedDict

import asyncpg

from expertconnect import names
from expertconnect.actions import accounts
from expertconnect.actions.errors import BadCredentials
from expertconnect.errors import ValidationError
from expertconnect.handlers.base import BaseHandler
from expertconnect.validation import Form

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@+-]{3,150}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# bcrypt uses only the first 72 bytes of a password; a longer one is refused, not truncated.
PASSWORD_MIN_CHARS, PASSWORD_MAX_BYTES = 8, 72
NAME_MAX = 150
BIO_MAX = 2000
TIMEZONE_MAX = 64  # the longest IANA names are about 30 characters
INVISIBLE_CHARACTER = (
    "Invisible, control and text-direction characters are not allowed (found U+{code:04X})."
)
EMAIL_MIXED_SCRIPTS = (
    "Letters of different scripts (such as Latin and Cyrillic) cannot be mixed before the @ "
    "or within one part of the domain."
)
# An expert's price per hour of meeting; the cap keeps a day-long meeting's price far from the
# bounds of a credit balance.
CREDITS_PER_HOUR_MAX = 100_000
TIMEZONE_UNKNOWN = 'Unknown time zone. Use an IANA name such as "Europe/Berlin" or "UTC".'


def _password(form: Form) -> str | None:
    password = form.data.get("password")
    if password is None:
        form.error("password", "This field is required.")
        return None
    if not isinstance(password, str):
        form.error("password", "Must be a string.")
        return None
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        form.error("password", "Invalid unicode (lone surrogate).")
        return None
    if "\x00" in password:
        form.error("password", "NUL characters are not allowed.")
    elif len(password) < PASSWORD_MIN_CHARS:
        form.error("password", f"Ensure this field has at least {PASSWORD_MIN_CHARS} characters.")
    elif size > PASSWORD_MAX_BYTES:
        form.error("password", f"Ensure this field has no more than {PASSWORD_MAX_BYTES} bytes.")
    else:
        return password
    return None


def _name(form: Form, field: str, *, max_length: int) -> str | None:
    """A username or email as it is stored: NFKC, so fullwidth letters, ligatures and other
    compatibility forms become the plain letters they stand for. Invisible and
    direction-control characters are refused: they make different names look the same."""
    value = form.string(field, max_length=max_length)
    if value is None:
        return None
    hidden = names.invisible_character(value)
    if hidden is not None:
        form.error(field, INVISIBLE_CHARACTER.format(code=ord(hidden)))
        return None
    value = names.display_form(value)
    if len(value) > max_length:  # NFKC can lengthen a name: "ﬃ" is three letters
        form.error(field, f"Ensure this field has no more than {max_length} characters.")
        return None
    return value


def _timezone(form: Form) -> str | None:
    """An IANA time zone name (e.g. "Europe/Berlin"), as zoneinfo knows it."""
    name = form.string("timezone", required=False, max_length=TIMEZONE_MAX)
    if name is None:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError, OSError):
        # ValueError: not a normalized relative key ("/etc/passwd", "../x") or not a TZif file;
        # OSError: a name the file system cannot open at all.
        form.error("timezone", TIMEZONE_UNKNOWN)
        return None
    return name


class RegisterHandler(BaseHandler):
    auth_required = False
    rate_scope = "auth"

    async def post(self) -> None:
        form = self.form()
        username = _name(form, "username", max_length=150)
        if username is not None:
            form.check(
                bool(USERNAME_RE.match(username)),
                "username",
                "Enter a valid username: 3-150 letters, digits and @.+-_ only.",
            )
        email = _name(form, "email", max_length=254)
        if email is not None:
            form.check(bool(EMAIL_RE.match(email)), "email", "Enter a valid email address.")
            form.check(not names.email_mixes_scripts(email), "email", EMAIL_MIXED_SCRIPTS)
        password = _password(form)
        first_name = form.string(
            "first_name", required=False, max_length=NAME_MAX, allow_blank=True, default=""
        )
        last_name = form.string(
            "last_name", required=False, max_length=NAME_MAX, allow_blank=True, default=""
        )
        form.validate()
        # Each account comes with free credits: cap how many one address can open.
        with self.quota(self.services.limiters.registration, self.client_address):
            payload = await accounts.register(
                self.services,
                username=form.valid(username),
                email=form.valid(email),
                password=form.valid(password),
                first_name=form.valid(first_name),
                last_name=form.valid(last_name),
            )
        self.write_json(payload, status=201)


class LoginHandler(BaseHandler):
    auth_required = False
    rate_scope = "auth"

    async def post(self) -> None:
        form = self.form()
        username = form.string("username", max_length=254)
        password = _password(form)
        form.validate()
        username, password = form.valid(username), form.valid(password)
        # Failed logins also count per target username, so that many addresses cannot
        # brute-force one account; a locked-out attempt costs no bcrypt. A failure is reserved
        # before the password check and given back when the login succeeds (or never reached
        # the check), so concurrent guesses cannot all pass a lockout that is not yet charged.
        account_key = names.lookup_key(username)
        self.take_quota(self.services.limiters.login_failures, account_key)
        try:
            payload = await accounts.login(self.services, username=username, password=password)
        except BadCredentials:
            raise  # a wrong password keeps the failure it reserved
        except BaseException:
            self.refund_quota(self.services.limiters.login_failures, account_key)
            raise
        self.refund_quota(self.services.limiters.login_failures, account_key)
        self.write_json(payload)


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        assert self.token_claims is not None  # authenticated in prepare()
        await accounts.logout(self.services, self.token_claims)
        self.write_json({"success": True, "message": "Logged out successfully"})


class _ProfileChanges(TypedDict):
    first_name: str | None
    last_name: str | None
    bio: str | None
    profile_picture: str | None
    timezone: str | None
    credits_per_hour: int | None


class MeHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json(self.current_user)

    async def put(self) -> None:
        # Only these six are the user's to set; id, username, email and the rest are ignored.
        form = self.form()
        fields: _ProfileChanges = {
            "first_name": form.string(
                "first_name", required=False, max_length=NAME_MAX, allow_blank=True
            ),
            "last_name": form.string(
                "last_name", required=False, max_length=NAME_MAX, allow_blank=True
            ),
            "bio": form.string("bio", required=False, max_length=BIO_MAX, allow_blank=True),
            "profile_picture": form.url("profile_picture", required=False),
            "timezone": _timezone(form),
            "credits_per_hour": form.integer(
                "credits_per_hour", required=False, min_value=0, max_value=CREDITS_PER_HOUR_MAX
            ),
        }
        form.validate()
        try:
            user = await accounts.update_profile(self.services, self.user_id, **fields)
        except asyncpg.InvalidParameterValueError:
            # zoneinfo knew the name, PostgreSQL does not (users_timezone_known_check).
            raise ValidationError.single("timezone", TIMEZONE_UNKNOWN) from None
        self.write_json(user)


ROUTES = [
    (r"/api/users/register/", RegisterHandler),
    (r"/api/users/login/", LoginHandler),
    (r"/api/users/logout/", LogoutHandler),
    (r"/api/users/me/", MeHandler),
]
