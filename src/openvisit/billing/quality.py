"""Fair-quality credit (DESIGN §4): minutes with unusable media are not charged.

Only what the media server measured counts: one row per party and minute of the
visit (``visits.models.VisitMediaMinute``, written as the visit runs from the media
backend's quality reports; ``media.backend.PartyMinute`` says how each is measured)::

    VisitMediaMinute(party="visitor" | "resident", minute=<n>,
                     frozen_ms=...,                # longest video freeze of the party's
                                                   # media at the server, overlapping n
                     packets_expected=..., packets_lost=...,               # on the way in
                     viewer_packets_expected=..., viewer_packets_lost=...) # on the way out

The ``stats`` a browser sends over its socket are kept as diagnostics and never
read here: a client's own claim can't move money.

Minute ``n`` of a visit is ``[start + 60 n, start + 60 (n + 1))``. It is credited
when, for either party:

* **frozen video**: the party's video stopped reaching the server for 5 seconds or
  more while its media kept flowing, and that stretch overlaps the minute (a freeze
  across a minute boundary credits both minutes it touches). It froze on the other
  party's screen: the reason names that party; or
* **heavy loss**: 10 % or more of the packets due in that minute were lost, on the
  party's way in (the server counts the RTP sequence numbers) or on its way out (the
  party's RTCP receiver reports about what the server sent it), whichever is worse.
  The reason names the party whose connection lost them.

No measurement at all means no evidence of bad quality, so no credit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

PARTIES = ("visitor", "resident")
FROZEN_AFTER = dt.timedelta(seconds=5)
LOSS_LIMIT = Fraction(1, 10)
MINUTE = dt.timedelta(minutes=1)
_FROZEN_MS = FROZEN_AFTER // dt.timedelta(milliseconds=1)


class MeasuredMinute(Protocol):
    party: str
    minute: int
    frozen_ms: int
    packets_expected: int
    packets_lost: int
    viewer_packets_expected: int
    viewer_packets_lost: int


@dataclass
class MinuteCredit:
    """One credited minute and why: ``reasons`` are dicts such as
    {"party": "visitor", "reason": "frozen", "seconds": 6} or
    {"party": "resident", "reason": "packet_loss", "percent": 12}."""

    minute: int
    reasons: list[dict[str, Any]] = field(default_factory=list)


def _other(party: str) -> str:
    return "resident" if party == "visitor" else "visitor"


def loss(lost: int, expected: int) -> Fraction:
    """The share of ``expected`` packets lost (0 when none were due)."""
    return Fraction(min(max(lost, 0), expected), expected) if expected > 0 else Fraction(0)


def _heavy(lost: int, expected: int) -> bool:
    """``loss(lost, expected) >= LOSS_LIMIT`` in whole numbers (most minutes are fine, and
    a settlement judges dozens of them)."""
    return expected > 0 and lost * LOSS_LIMIT.denominator >= expected * LOSS_LIMIT.numerator


def credited_minutes(
    rows: Iterable[MeasuredMinute], start: dt.datetime, end: dt.datetime
) -> list[MinuteCredit]:
    """The minutes of the visit [start, end) not to be charged, in order, with reasons."""
    count = -(-(end - start) // MINUTE)  # the last, partial minute counts too
    order = {party: i for i, party in enumerate(PARTIES)}
    found: dict[int, list[tuple[int, int, dict[str, Any]]]] = {}
    for row in rows:
        if row.party not in PARTIES or not 0 <= row.minute < count:
            continue
        reasons = found.setdefault(row.minute, [])
        if row.frozen_ms >= _FROZEN_MS:
            seen_by = _other(row.party)
            reason = {"party": seen_by, "reason": "frozen", "seconds": row.frozen_ms // 1000}
            reasons.append((order[seen_by], 0, reason))
        if _heavy(row.packets_lost, row.packets_expected) or _heavy(
            row.viewer_packets_lost, row.viewer_packets_expected
        ):
            worst = max(
                loss(row.packets_lost, row.packets_expected),
                loss(row.viewer_packets_lost, row.viewer_packets_expected),
            )
            reason = {"party": row.party, "reason": "packet_loss", "percent": int(worst * 100)}
            reasons.append((order[row.party], 1, reason))
    return [
        MinuteCredit(n, [r for _, _, r in sorted(found[n], key=lambda x: x[:2])])
        for n in sorted(found)
        if found[n]
    ]


def reason_words(reason: dict[str, Any], *, for_staff: bool = False) -> str:
    """A credit's reason in plain words, for the family's receipt (or for staff)."""
    if for_staff:
        who = "the visitor's" if reason.get("party") == "visitor" else "the resident's"
    else:
        who = "your" if reason.get("party") == "visitor" else "the resident's"
    if reason.get("reason") == "frozen":
        return f"Video froze on {who} screen for {reason.get('seconds', 5)} seconds"
    return f"{who.capitalize()} connection lost {reason.get('percent', 10)}% of its packets"
