"""What makes a resident's kiosk PIN acceptable: pure rules, no database.

A PIN is the resident's only secret at a kiosk in a unit full of people who can watch,
guess and try, so it must not be short or guessable: 6 to 12 ASCII digits, not one digit
repeated (111111) or a short block repeated (121212, 123123), not a run up or down
(123456, 654321, 890123), and not the resident's booking number or date of birth, which
other people in the unit may know.
"""

from __future__ import annotations

import datetime as dt
import itertools

PIN_MIN = 6
PIN_MAX = 12
# How a PIN is described wherever one is asked for.
PIN_RULE = f"{PIN_MIN} to {PIN_MAX} digits"


def normalize_pin(pin: str) -> str:
    """A PIN as typed, without the spaces people put in to read it back."""
    return "".join(pin.split())


def pin_problem(digits: str, *, booking_number: str, date_of_birth: dt.date) -> str | None:
    """Why this PIN (already normalized) is not acceptable, as a person is told; None if it
    is."""
    if not digits.isascii() or not digits.isdigit() or not PIN_MIN <= len(digits) <= PIN_MAX:
        return f"The PIN must be {PIN_RULE}."
    if _repeats_a_block(digits):
        return (
            "The PIN can't be one digit or a short group of digits repeated, like 111111 or 121212."
        )
    if _is_a_run(digits):
        return "The PIN can't be digits in order, like 123456 or 654321."
    booking_digits = "".join(c for c in booking_number if c.isascii() and c.isdigit())
    if len(booking_digits) >= 4 and booking_digits in digits:
        return "The PIN can't contain the resident's booking number."
    if any(form in digits for form in _birth_date_forms(date_of_birth)):
        return "The PIN can't contain the resident's date of birth."
    return None


def _repeats_a_block(digits: str) -> bool:
    return any(
        len(digits) % size == 0 and digits == digits[:size] * (len(digits) // size)
        for size in (1, 2, 3)
    )


def _is_a_run(digits: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(digits)}
    return steps in ({1}, {9})


def _birth_date_forms(born: dt.date) -> set[str]:
    year, short = f"{born.year:04d}", f"{born.year % 100:02d}"
    month, day = f"{born.month:02d}", f"{born.day:02d}"
    return {
        year + month + day,
        month + day + year,
        day + month + year,
        month + day + short,
        day + month + short,
        short + month + day,
    }
