"""Domain errors carry a code and an HTTP status; one handler renders them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    http_status = 400
    message = "The request could not be completed."
    # When true the request's transaction is committed even though the request
    # failed: for records that must outlive the failure (a failed sign-in).
    keep_changes = False

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        http_status: int | None = None,
        fields: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        self.message = message or type(self).message
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.fields = fields or {}
        self.details = details
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(DomainError):
    code = "invalid_input"
    http_status = 422
    message = "Some of the information given is not valid."


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    message = "We couldn't find that."


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class NotAuthenticated(DomainError):
    code = "not_authenticated"
    http_status = 401
    message = "Please sign in."


class Forbidden(DomainError):
    code = "forbidden"
    http_status = 403
    message = "You don't have permission to do that."


class TooManyAttempts(DomainError):
    code = "too_many_attempts"
    http_status = 429
    message = "Too many attempts. Please wait a few minutes and try again."
