"""Secrets out of logs: query parameters and links that carry a token or a code.

Used by the mail log (development) and by the access log's filter, so that a
reset link or a kiosk activation code copied from a server log is worth nothing.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# Query parameters whose value is a secret (compared case-insensitively).
SECRET_PARAMETERS = frozenset(
    {"token", "code", "key", "secret", "password", "csrf_token", "session", "otp", "pin"}
)

_PARAMETER = re.compile(
    r"(?P<name>[?&;](?:" + "|".join(sorted(SECRET_PARAMETERS)) + r"))=(?P<value>[^&#\s\"']*)",
    re.IGNORECASE,
)


def redact_secrets(text: str) -> str:
    """``text`` with the value of every secret-carrying query parameter replaced."""
    return _PARAMETER.sub(lambda m: f"{m.group('name')}={REDACTED}", text)


class RedactSecrets(logging.Filter):
    """A logging filter that redacts secret query parameters from a record's message
    arguments (uvicorn's access log passes the request's path and query as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True
