"""What an action says when it refuses a request, in its own words (no HTTP): a business rule
says no, a field the schema or a rule refuses, a row that does not exist, wrong credentials.
The one place that renders errors (errors.as_api_error) gives each its status and shape."""

from __future__ import annotations


class ActionError(Exception):
    """A refusal the client caused and can act on; never a failure of the server."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Refused(ActionError):
    """A rule forbids it in the current state (rendered as a 400 {"error": message})."""


class InvalidField(ActionError):
    """One input field is refused (rendered as a 400 {"errors": {field: [message]}})."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class DoesNotExist(ActionError):
    """The row asked for does not exist, or is not the caller's to see (a 404)."""


class BadCredentials(ActionError):
    """Unknown username or wrong password (a 401)."""


class KeyInUse(ActionError):
    """An Idempotency-Key is held by a request still running (a 409 with Retry-After)."""

    def __init__(self, message: str, retry_after: str):
        super().__init__(message)
        self.retry_after = retry_after


class KeyReused(ActionError):
    """An Idempotency-Key already answered a different request (a 422)."""


class CallerGone(ActionError):
    """The user acting was deleted after their request (or socket) was authenticated: a
    foreign key from the row they write to their users row refused it (a 401)."""

    def __init__(self, message: str = "User no longer exists"):
        super().__init__(message)
