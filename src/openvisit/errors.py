"""Domain errors carry a code from one catalog; one handler renders them.

Every code a client can see is a member of ``Code`` and has exactly one HTTP
status in ``HTTP_STATUS`` (zulip's ``ErrorCode``). docs/architecture.md lists
them; a test keeps that list and this one equal.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

from pydantic import BaseModel


class Code(enum.StrEnum):
    ACCOUNT_CLOSED = "account_closed"
    ALREADY_APPROVED = "already_approved"
    ALREADY_DECIDED = "already_decided"
    ALREADY_LIFTED = "already_lifted"
    ALREADY_REQUESTED = "already_requested"
    ALREADY_VERIFIED = "already_verified"
    APPROVAL_LIMIT_REACHED = "approval_limit_reached"
    BAD_ORIGIN = "bad_origin"
    BEYOND_HORIZON = "beyond_horizon"
    BINARY_NOT_SUPPORTED = "binary_not_supported"
    BOOKING_NUMBER_TAKEN = "booking_number_taken"
    BUSY = "busy"
    CARD_DECLINED = "card_declined"
    CLOSURE_END_BEFORE_START = "closure_end_before_start"
    CLOSURE_IN_PAST = "closure_in_past"
    CLOSURE_NEEDS_END = "closure_needs_end"
    CLOSURE_NOT_ACTIVE = "closure_not_active"
    CLOSURE_NOT_STARTED = "closure_not_started"
    CONFLICT = "conflict"
    CREDENTIAL_NOT_VERIFIED = "credential_not_verified"
    CSRF_FAILED = "csrf_failed"
    CUSTODY_UNCHANGED = "custody_unchanged"
    DEMO_IN_PRODUCTION = "demo_in_production"
    DOCUMENT_MISSING = "document_missing"
    EMAIL_ALREADY_VERIFIED = "email_already_verified"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    EMAIL_TAKEN = "email_taken"
    EMPTY_WARNING = "empty_warning"
    ERROR = "error"
    FACILITY_CLOSED = "facility_closed"
    FACILITY_NAME_TAKEN = "facility_name_taken"
    FILE_TOO_LARGE = "file_too_large"
    FORBIDDEN = "forbidden"
    GATEWAY_TIMEOUT = "gateway_timeout"
    HOURS_END_BEFORE_START = "hours_end_before_start"
    HOURS_OVERLAP = "hours_overlap"
    HTTP_ERROR = "http_error"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INTERNAL_ERROR = "internal_error"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_CARD = "invalid_card"
    INVALID_DATE = "invalid_date"
    INVALID_DATE_RANGE = "invalid_date_range"
    INVALID_EVENT = "invalid_event"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    INVALID_INPUT = "invalid_input"
    INVALID_MESSAGE = "invalid_message"
    INVALID_METHOD = "invalid_method"
    INVALID_REFERENCE = "invalid_reference"
    INVALID_SETTINGS = "invalid_settings"
    INVALID_TIME = "invalid_time"
    INVALID_TIME_ZONE = "invalid_time_zone"
    INVALID_TRANSITION = "invalid_transition"
    KIOSK_HAS_NO_CREDENTIAL = "kiosk_has_no_credential"
    KIOSK_NAME_TAKEN = "kiosk_name_taken"
    KIOSK_NEEDS_UNIT = "kiosk_needs_unit"
    KIOSK_OUT_OF_SERVICE = "kiosk_out_of_service"
    LENGTH_NOT_OFFERED = "length_not_offered"
    LOBBY_DEPOSIT_CAP_REACHED = "lobby_deposit_cap_reached"
    LOBBY_KIOSK_UNIT = "lobby_kiosk_unit"
    MALFORMED_JSON = "malformed_json"
    MEDIA_FAILED = "media_failed"
    MESSAGE_TOO_LARGE = "message_too_large"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NAIVE_DATETIME = "naive_datetime"
    NO_KIOSK = "no_kiosk"
    NO_SLOT = "no_slot"
    NOT_A_LOCKDOWN = "not_a_lockdown"
    NOT_A_PROFESSIONAL = "not_a_professional"
    NOT_APPROVED = "not_approved"
    NOT_AUTHENTICATED = "not_authenticated"
    NOT_CANCELLABLE = "not_cancellable"
    NOT_CONFIRMED = "not_confirmed"
    NOT_ELIGIBLE = "not_eligible"
    NOT_FOUND = "not_found"
    NOT_RESCHEDULABLE = "not_reschedulable"
    NOT_RESTRICTED = "not_restricted"
    NOT_SETTLED = "not_settled"
    NOTHING_TO_REFUND = "nothing_to_refund"
    PASSWORD_TOO_WEAK = "password_too_weak"
    PAYMENTS_UNAVAILABLE = "payments_unavailable"
    PAYOUT_FAILED = "payout_failed"
    PIN_INVALID = "pin_invalid"
    PRIVILEGED_VISIT = "privileged_visit"
    RATE_ABOVE_CAP = "rate_above_cap"
    REASON_REQUIRED = "reason_required"
    REPLACED = "replaced"
    RESIDENT_NOT_FOUND = "resident_not_found"
    RESIDENT_NOT_IN_CUSTODY = "resident_not_in_custody"
    RESTRICTION_IN_PAST = "restriction_in_past"
    ROSTER_BAD_HEADER = "roster_bad_header"
    ROSTER_EMPTY = "roster_empty"
    ROSTER_NOT_CSV = "roster_not_csv"
    ROSTER_NOT_UTF8 = "roster_not_utf8"
    ROSTER_REJECTED = "roster_rejected"
    ROSTER_TOO_LARGE = "roster_too_large"
    ROSTER_TOO_MANY_ROWS = "roster_too_many_rows"
    SETTLEMENT_PENDING = "settlement_pending"
    SIGN_IN_EXPIRED = "sign_in_expired"
    SIGN_IN_FAILED = "sign_in_failed"
    SLOT_NOT_CHOSEN = "slot_not_chosen"
    SLOT_NOT_OFFERED = "slot_not_offered"
    SLOT_TAKEN = "slot_taken"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_INVALID = "token_invalid"
    TOKEN_USED = "token_used"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    TOO_MANY_ERRORS = "too_many_errors"
    TOO_SOON = "too_soon"
    TOTP_ALREADY_ENABLED = "totp_already_enabled"
    TOTP_CODE_WRONG = "totp_code_wrong"
    TOTP_NOT_ENABLED = "totp_not_enabled"
    TOTP_NOT_STARTED = "totp_not_started"
    TOTP_REQUIRED = "totp_required"
    UNBALANCED = "unbalanced"
    UNIT_IN_USE = "unit_in_use"
    UNIT_NAME_TAKEN = "unit_name_taken"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_FILE_TYPE = "unsupported_file_type"
    VISIT_IN_PROGRESS = "visit_in_progress"
    VISIT_NOT_FOUND = "visit_not_found"
    VISIT_NOT_LIVE = "visit_not_live"
    VISIT_NOT_OPEN = "visit_not_open"
    VISITOR_BLOCKED = "visitor_blocked"
    VISITOR_NOT_APPROVED = "visitor_not_approved"
    VISITOR_NOT_FOUND = "visitor_not_found"
    WEEKLY_QUOTA_REACHED = "weekly_quota_reached"


HTTP_STATUS: dict[Code, int] = {
    Code.ACCOUNT_CLOSED: 403,
    Code.ALREADY_APPROVED: 409,
    Code.ALREADY_DECIDED: 409,
    Code.ALREADY_LIFTED: 409,
    Code.ALREADY_REQUESTED: 409,
    Code.ALREADY_VERIFIED: 409,
    Code.APPROVAL_LIMIT_REACHED: 409,
    Code.BAD_ORIGIN: 403,
    Code.BEYOND_HORIZON: 422,
    Code.BINARY_NOT_SUPPORTED: 422,
    Code.BOOKING_NUMBER_TAKEN: 409,
    Code.BUSY: 503,
    Code.CARD_DECLINED: 402,
    Code.CLOSURE_END_BEFORE_START: 422,
    Code.CLOSURE_IN_PAST: 422,
    Code.CLOSURE_NEEDS_END: 422,
    Code.CLOSURE_NOT_ACTIVE: 409,
    Code.CLOSURE_NOT_STARTED: 409,
    Code.CONFLICT: 409,
    Code.CREDENTIAL_NOT_VERIFIED: 403,
    Code.CSRF_FAILED: 403,
    Code.CUSTODY_UNCHANGED: 409,
    Code.DEMO_IN_PRODUCTION: 400,
    Code.DOCUMENT_MISSING: 404,
    Code.EMAIL_ALREADY_VERIFIED: 409,
    Code.EMAIL_NOT_VERIFIED: 403,
    Code.EMAIL_TAKEN: 409,
    Code.EMPTY_WARNING: 422,
    Code.ERROR: 400,
    Code.FACILITY_CLOSED: 422,
    Code.FACILITY_NAME_TAKEN: 409,
    Code.FILE_TOO_LARGE: 413,
    Code.FORBIDDEN: 403,
    Code.GATEWAY_TIMEOUT: 504,
    Code.HOURS_END_BEFORE_START: 422,
    Code.HOURS_OVERLAP: 422,
    Code.HTTP_ERROR: 400,
    Code.IDEMPOTENCY_CONFLICT: 409,
    Code.IDENTITY_NOT_VERIFIED: 403,
    Code.INSUFFICIENT_FUNDS: 402,
    Code.INTERNAL_ERROR: 500,
    Code.INVALID_AMOUNT: 422,
    Code.INVALID_CARD: 422,
    Code.INVALID_DATE: 422,
    Code.INVALID_DATE_RANGE: 422,
    Code.INVALID_EVENT: 422,
    Code.INVALID_IDEMPOTENCY_KEY: 422,
    Code.INVALID_INPUT: 422,
    Code.INVALID_MESSAGE: 422,
    Code.INVALID_METHOD: 422,
    Code.INVALID_REFERENCE: 422,
    Code.INVALID_SETTINGS: 422,
    Code.INVALID_TIME: 422,
    Code.INVALID_TIME_ZONE: 422,
    Code.INVALID_TRANSITION: 409,
    Code.KIOSK_HAS_NO_CREDENTIAL: 409,
    Code.KIOSK_NAME_TAKEN: 409,
    Code.KIOSK_NEEDS_UNIT: 422,
    Code.KIOSK_OUT_OF_SERVICE: 403,
    Code.LENGTH_NOT_OFFERED: 422,
    Code.LOBBY_DEPOSIT_CAP_REACHED: 409,
    Code.LOBBY_KIOSK_UNIT: 422,
    Code.MALFORMED_JSON: 400,
    Code.MEDIA_FAILED: 409,
    Code.MESSAGE_TOO_LARGE: 413,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.NAIVE_DATETIME: 422,
    Code.NO_KIOSK: 409,
    Code.NO_SLOT: 400,
    Code.NOT_A_LOCKDOWN: 409,
    Code.NOT_A_PROFESSIONAL: 403,
    Code.NOT_APPROVED: 409,
    Code.NOT_AUTHENTICATED: 401,
    Code.NOT_CANCELLABLE: 409,
    Code.NOT_CONFIRMED: 422,
    Code.NOT_ELIGIBLE: 403,
    Code.NOT_FOUND: 404,
    Code.NOT_RESCHEDULABLE: 409,
    Code.NOT_RESTRICTED: 409,
    Code.NOT_SETTLED: 409,
    Code.NOTHING_TO_REFUND: 409,
    Code.PASSWORD_TOO_WEAK: 422,
    Code.PAYMENTS_UNAVAILABLE: 503,
    Code.PAYOUT_FAILED: 503,
    Code.PIN_INVALID: 422,
    Code.PRIVILEGED_VISIT: 403,
    Code.RATE_ABOVE_CAP: 422,
    Code.REASON_REQUIRED: 422,
    Code.REPLACED: 409,
    Code.RESIDENT_NOT_FOUND: 404,
    Code.RESIDENT_NOT_IN_CUSTODY: 403,
    Code.RESTRICTION_IN_PAST: 422,
    Code.ROSTER_BAD_HEADER: 422,
    Code.ROSTER_EMPTY: 422,
    Code.ROSTER_NOT_CSV: 422,
    Code.ROSTER_NOT_UTF8: 422,
    Code.ROSTER_REJECTED: 422,
    Code.ROSTER_TOO_LARGE: 413,
    Code.ROSTER_TOO_MANY_ROWS: 422,
    Code.SETTLEMENT_PENDING: 409,
    Code.SIGN_IN_EXPIRED: 401,
    Code.SIGN_IN_FAILED: 401,
    Code.SLOT_NOT_CHOSEN: 422,
    Code.SLOT_NOT_OFFERED: 422,
    Code.SLOT_TAKEN: 409,
    Code.TOKEN_EXPIRED: 410,
    Code.TOKEN_INVALID: 400,
    Code.TOKEN_USED: 410,
    Code.TOO_MANY_ATTEMPTS: 429,
    Code.TOO_MANY_ERRORS: 429,
    Code.TOO_SOON: 422,
    Code.TOTP_ALREADY_ENABLED: 409,
    Code.TOTP_CODE_WRONG: 422,
    Code.TOTP_NOT_ENABLED: 409,
    Code.TOTP_NOT_STARTED: 409,
    Code.TOTP_REQUIRED: 401,
    Code.UNBALANCED: 422,
    Code.UNIT_IN_USE: 409,
    Code.UNIT_NAME_TAKEN: 409,
    Code.UNKNOWN_TYPE: 422,
    Code.UNSUPPORTED_FILE_TYPE: 422,
    Code.VISIT_IN_PROGRESS: 409,
    Code.VISIT_NOT_FOUND: 404,
    Code.VISIT_NOT_LIVE: 409,
    Code.VISIT_NOT_OPEN: 409,
    Code.VISITOR_BLOCKED: 403,
    Code.VISITOR_NOT_APPROVED: 403,
    Code.VISITOR_NOT_FOUND: 404,
    Code.WEEKLY_QUOTA_REACHED: 422,
}


class DomainError(Exception):
    code: Code = Code.ERROR
    message: str = "The request could not be completed."
    # When true the request's transaction is committed even though the request
    # failed: for records that must outlive the failure (a failed sign-in).
    keep_changes: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        code: Code | None = None,
        fields: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        self.message = message or type(self).message
        if code is not None:
            # Code(...) also refuses a string that is not in the catalog.
            self.code = Code(code)
        self.fields = fields or {}
        self.details = details
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        if self.details:
            body["details"] = self.details
        return {"error": body}


class ErrorDetail(BaseModel):
    """What went wrong: ``DomainError.to_json``'s shape, for OpenAPI."""

    code: Code
    message: str
    fields: dict[str, str] | None = None  # field -> what to fix there
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    """Every refused API request answers this (any 4xx, and 5xx where declared)."""

    error: ErrorDetail


# The answers every API operation may give besides its own: declared once, where the
# routers are mounted, so that the schema tells the truth about them.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "Refused; the error's code says why"},
}


class InvalidInput(DomainError):
    code = Code.INVALID_INPUT
    message = "Some of the information given is not valid."


class NotFound(DomainError):
    code = Code.NOT_FOUND
    message = "We couldn't find that."


class Conflict(DomainError):
    code = Code.CONFLICT


class NotAuthenticated(DomainError):
    code = Code.NOT_AUTHENTICATED
    message = "Please sign in."


class Forbidden(DomainError):
    code = Code.FORBIDDEN
    message = "You don't have permission to do that."


class TooManyAttempts(DomainError):
    code = Code.TOO_MANY_ATTEMPTS
    message = "Too many attempts. Please wait a few minutes and try again."


class Busy(DomainError):
    """A bounded wait ran out: for a database connection, a lock or a statement. Nothing
    was changed (the request's transaction rolled back); the client may try again after
    ``retry_after_seconds`` (sent as ``Retry-After``)."""

    code = Code.BUSY
    message = (
        "Lots of people are using the service right now, so we couldn't finish this. "
        "Nothing was changed. Please wait a few seconds and try again."
    )

    def __init__(self, message: str | None = None, *, retry_after_seconds: int = 2) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)
