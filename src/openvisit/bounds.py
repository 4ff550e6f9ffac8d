"""The range of every number and date a request may carry, and the one way to read them
from text.

Outside these ranges a value is refused as bad input (a 4xx) before it reaches the
database, whose integers stop at 2**63 - 1, or date arithmetic, which stops at year 9999.
Digits are ASCII only: ``int()`` and ``str.isdigit()`` also take Arabic-Indic,
fullwidth and superscript digits.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, TypeVar

from annotated_types import Ge, Le
from pydantic import AfterValidator

# The largest id anything accepts: PostgreSQL's bigint.
MAX_ID = 2**63 - 1
# Dates anyone can mean here: births, visits, reports. Their arithmetic (a day later, a
# time zone away) stays far from datetime's year 1 and year 9999.
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2199, 12, 31)
DATE_RANGE_MESSAGE = f"Enter a date between {MIN_DATE.year} and {MAX_DATE.year}"

_ASCII_DIGITS = re.compile(r"[0-9]+")


def in_range(day: dt.date) -> bool:
    """Whether a date (or a datetime's date) is one this system takes."""
    if isinstance(day, dt.datetime):
        day = day.date()
    return MIN_DATE <= day <= MAX_DATE


D = TypeVar("D", dt.date, dt.datetime)


def _within(value: D) -> D:
    if not in_range(value):
        raise ValueError(DATE_RANGE_MESSAGE)
    return value


# For pydantic models and FastAPI parameters (path, query, body) alike.
Id = Annotated[int, Ge(1), Le(MAX_ID)]
WITHIN_RANGE = AfterValidator(_within)  # a date or datetime in MIN_DATE..MAX_DATE
Day = Annotated[dt.date, WITHIN_RANGE]
Moment = Annotated[dt.datetime, WITHIN_RANGE]


def parse_id(text: str) -> int | None:
    """An id typed or sent as text (a form field, a socket's path): ASCII digits within
    ``1..MAX_ID``, else None."""
    text = text.strip()
    if not _ASCII_DIGITS.fullmatch(text) or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def _parse(text: str, kind: type[D], form: str) -> D:
    """``text`` as an ISO 8601 value of ``kind`` within the range; ValueError (its message
    fit to show: "Enter the ``form``") otherwise."""
    text = text.strip()
    if not text.isascii():
        raise ValueError(f"Enter the {form}")
    return _within(kind.fromisoformat(text))


def parse_date(text: str) -> dt.date:
    """A YYYY-MM-DD date within the range; ValueError (its message fit to show) otherwise."""
    return _parse(text, dt.date, "date as YYYY-MM-DD")


def parse_datetime(text: str) -> dt.datetime:
    """An ISO 8601 date and time within the range; ValueError otherwise."""
    return _parse(text, dt.datetime, "time as YYYY-MM-DDTHH:MM")
