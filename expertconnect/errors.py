"""The ApiError family: raise anywhere in a request, rendered once by BaseHandler.write_error
as the spec's `{"error": ...}` or `{"errors": {field: [...]}}`. as_api_error translates the
other layers' own errors (an action's refusal, the database being unavailable) into it."""

from __future__ import annotations

from typing import overload

from expertconnect.actions.errors import (
    ActionError,
    BadCredentials,
    CallerGone,
    DoesNotExist,
    InvalidField,
    KeyInUse,
    KeyReused,
)
from expertconnect.db import DatabaseUnavailable


class ApiError(Exception):
    status = 400

    def __init__(self, message: str = "Bad request", *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        # Headers that must survive Tornado's send_error (which clears the response headers).
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.message}


class BadRequest(ApiError):
    status = 400


class ValidationError(ApiError):
    """Field problems, all reported at once: {"errors": {"field": ["message", ...]}}."""

    status = 400

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("Validation failed")
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> ValidationError:
        return cls({field: [message]})

    def body(self) -> dict:
        return {"errors": self.errors}


# The 401 messages for a request without usable credentials: none at all, or not a bearer token.
NO_CREDENTIALS = "Authentication credentials were not provided"
BEARER_EXPECTED = 'Authorization header must be "Bearer <token>"'


class Unauthorized(ApiError):
    status = 401

    def __init__(
        self, message: str = "Authentication credentials were not provided or are invalid"
    ):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="api"'})


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405

    def __init__(self) -> None:
        super().__init__("Method not allowed")


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413

    def __init__(self) -> None:
        # The unread body is still on the wire: the connection cannot be reused.
        super().__init__("Request body too large", headers={"Connection": "close"})


class UnsupportedMediaType(ApiError):
    status = 415


class UnprocessableEntity(ApiError):
    status = 422


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, headers: dict[str, str]):
        super().__init__("Rate limit exceeded", headers=headers)


class ServiceUnavailable(ApiError):
    status = 503

    def __init__(self, message: str = "Service temporarily unavailable"):
        super().__init__(message, headers={"Retry-After": "5"})


# Every error of the layers has an answer; only anything else may be a 500.
@overload
def as_api_error(exc: ApiError | ActionError | DatabaseUnavailable) -> ApiError: ...
@overload
def as_api_error(exc: BaseException | None) -> ApiError | None: ...
def as_api_error(exc: BaseException | None) -> ApiError | None:
    """The answer a client gets for `exc`, or None if it is a failure of the server (a 500).
    The one place where the layers' own errors get an HTTP status."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, DatabaseUnavailable):
        return ServiceUnavailable(exc.message)
    if isinstance(exc, InvalidField):
        return ValidationError.single(exc.field, exc.message)
    if isinstance(exc, DoesNotExist):
        return NotFound(exc.message)
    if isinstance(exc, BadCredentials | CallerGone):
        return Unauthorized(exc.message)
    if isinstance(exc, KeyInUse):
        return Conflict(exc.message, headers={"Retry-After": exc.retry_after})
    if isinstance(exc, KeyReused):
        return UnprocessableEntity(exc.message)
    if isinstance(exc, ActionError):  # Refused
        return BadRequest(exc.message)
    return None
