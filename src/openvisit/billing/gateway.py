"""Card payments: the interface, and a sandbox for development and tests.

A gateway must be idempotent by key: asking twice with the same key charges
once and answers the same. That is what makes a timed-out deposit safe to
retry: the app retries with the same key, and either the first attempt went
through (the same answer comes back) or it didn't (it goes through now).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from openvisit.config import Settings
from openvisit.errors import Code, DomainError


@dataclass(frozen=True)
class ChargeResult:
    reference: str
    card_last4: str


class CardDeclined(DomainError):
    code = Code.CARD_DECLINED
    message = "The card was declined. No money was taken. Try another card."


class GatewayTimeout(DomainError):
    code = Code.GATEWAY_TIMEOUT
    message = (
        "The card payment service did not answer in time. No money was added. "
        "Please try again in a moment (your card will not be charged twice)."
    )


class GatewayConflict(DomainError):
    code = Code.IDEMPOTENCY_CONFLICT
    message = "This payment's key was already used for a different amount or card."


class PaymentGateway(Protocol):
    def charge(self, *, idempotency_key: str, amount_cents: int, card_number: str) -> ChargeResult:
        """Take ``amount_cents`` from the card, once per key; raise CardDeclined or
        GatewayTimeout."""
        ...

    def payout(self, *, idempotency_key: str, amount_cents: int, visitor_id: int) -> str:
        """Pay ``amount_cents`` back to the family's payment methods, once per key; return
        the payout's reference; raise GatewayTimeout if unsure (a retry is safe)."""
        ...


class PayoutTimeout(GatewayTimeout):
    message = (
        "The payment service did not answer in time, so no money was paid back. "
        "Please try again in a moment (you will not be paid twice)."
    )


Answer = TypeVar("Answer")


class SandboxGateway:
    """Approves every card, except: numbers ending 0002 are declined; numbers ending
    0003 time out on the first attempt of each key and go through on a retry.
    Pays every payout, except that the next ``payouts_to_time_out`` payouts time out
    without paying (set it to try the failure path)."""

    def __init__(self, *, payouts_to_time_out: int = 0) -> None:
        self._lock = threading.Lock()
        # Per key: what was asked (amount, card or visitor) and the answer given.
        self._charges: dict[str, tuple[tuple[int, object], ChargeResult]] = {}
        self._timed_out: set[str] = set()
        self._payouts: dict[str, tuple[tuple[int, object], str]] = {}
        self.payouts_to_time_out = payouts_to_time_out
        self.calls = 0

    def _once(
        self,
        done: dict[str, tuple[tuple[int, object], Answer]],
        key: str,
        asked: tuple[int, object],
        answer: Callable[[], Answer],
    ) -> Answer:
        """Answer a key once: asked again for the same thing, the same answer; the same
        key for something else is a conflict. ``answer`` may raise: nothing is kept."""
        with self._lock:
            self.calls += 1
            if key in done:
                if done[key][0] != asked:
                    raise GatewayConflict()
                return done[key][1]
            result = answer()
            done[key] = (asked, result)
            return result

    def charge(self, *, idempotency_key: str, amount_cents: int, card_number: str) -> ChargeResult:
        def answer() -> ChargeResult:
            if card_number.endswith("0002"):
                raise CardDeclined()
            if card_number.endswith("0003") and idempotency_key not in self._timed_out:
                self._timed_out.add(idempotency_key)
                raise GatewayTimeout()
            return ChargeResult(
                reference=f"sandbox-{len(self._charges) + 1:06d}", card_last4=card_number[-4:]
            )

        return self._once(self._charges, idempotency_key, (amount_cents, card_number), answer)

    def payout(self, *, idempotency_key: str, amount_cents: int, visitor_id: int) -> str:
        def answer() -> str:
            if self.payouts_to_time_out > 0:
                self.payouts_to_time_out -= 1
                raise PayoutTimeout()
            return f"sandbox-payout-{len(self._payouts) + 1:06d}"

        return self._once(self._payouts, idempotency_key, (amount_cents, visitor_id), answer)

    @property
    def paid_out_cents(self) -> int:
        return sum(amount for (amount, _visitor), _r in self._payouts.values())

    @property
    def charged_cents(self) -> int:
        return sum(amount for (amount, _card), _r in self._charges.values())


def gateway_for(settings: Settings) -> PaymentGateway | None:
    """The payment gateway the app uses, chosen once at start-up: the sandbox outside
    production; none in production, where no real gateway is wired yet (card deposits and
    refunds are refused, and nothing is paid out, until one is)."""
    if settings.env == "production":
        return None
    return SandboxGateway()
