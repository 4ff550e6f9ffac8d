"""Fair-quality credit (DESIGN §4): minutes with unusable media are not charged.

The clients report what they receive as visit events of kind ``stats``, one per
party about every 2 seconds while they are in the call::

    VisitEvent(kind="stats", party="visitor" | "resident", at=<when measured>,
               data={"frames_decoded": 5812,      # video frames decoded so far
                     "packets_received": 90210,   # inbound video RTP packets so far
                     "packets_lost": 312})        # of those, lost so far

The three counts are cumulative since the party's connection started (WebRTC
``inbound-rtp`` ``framesDecoded``, ``packetsReceived``, ``packetsLost``), so a
missed report loses nothing. A count that goes down means the party reconnected
and its counters restarted: the new reports are a new series, nothing is lost or
frozen across the restart. A report without the three whole, non-negative counts
is ignored (it comes from the client: it is untrusted).

Minute ``n`` of a visit is ``[start + 60 n, start + 60 (n + 1))``. It is credited
when, for either party:

* **frozen video**: the party's frames_decoded stayed the same for 5 seconds or
  more (from the first report showing a count to the last one showing it still)
  and that stretch overlaps the minute; a freeze across a minute boundary credits
  both minutes it touches; or
* **heavy loss**: of the packets due in that minute (received + lost, a report
  pair's increase shared between minutes in proportion to time), 10 % or more
  were lost.

No stats at all means no evidence of bad quality, so no credit.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

PARTIES = ("visitor", "resident")
FROZEN_AFTER = dt.timedelta(seconds=5)
LOSS_LIMIT = Fraction(1, 10)
MINUTE = dt.timedelta(minutes=1)
_COUNTS = ("frames_decoded", "packets_received", "packets_lost")


class StatsEventLike(Protocol):
    at: dt.datetime
    kind: str
    party: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Sample:
    at: dt.datetime
    frames: int
    received: int
    lost: int


@dataclass
class MinuteCredit:
    """One credited minute and why: ``reasons`` are dicts such as
    {"party": "visitor", "reason": "frozen", "seconds": 6} or
    {"party": "resident", "reason": "packet_loss", "percent": 12}."""

    minute: int
    reasons: list[dict[str, Any]] = field(default_factory=list)


def _count(value: object) -> int | None:
    return value if type(value) is int and 0 <= value < 2**53 else None


def samples_by_party(events: Iterable[StatsEventLike]) -> dict[str, list[Sample]]:
    """The well-formed stats reports of each party, in time order."""
    out: dict[str, list[Sample]] = {p: [] for p in PARTIES}
    for e in events:
        if e.kind != "stats" or e.party not in PARTIES or not isinstance(e.data, dict):
            continue
        frames, received, lost = (_count(e.data.get(name)) for name in _COUNTS)
        if frames is None or received is None or lost is None:
            continue
        out[e.party].append(Sample(e.at, frames, received, lost))
    for series in out.values():
        series.sort(key=lambda s: s.at)
    return out


def _minutes_touched(lo: dt.datetime, hi: dt.datetime, start: dt.datetime, count: int) -> range:
    """Minutes n (0 <= n < count) whose span [start+60n, start+60(n+1)) meets [lo, hi]."""
    first = max(0, (lo - start) // MINUTE)
    last = min(count - 1, (hi - start) // MINUTE)
    return range(first, last + 1)


def _freezes(series: Sequence[Sample]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Stretches [first, last] of reports showing the same frames count, 5 s or longer."""
    found = []
    i = 0
    while i < len(series):
        j = i
        while j + 1 < len(series) and series[j + 1].frames == series[i].frames:
            j += 1
        if series[j].at - series[i].at >= FROZEN_AFTER:
            found.append((series[i].at, series[j].at))
        i = j + 1
    return found


def credited_minutes(
    events: Iterable[StatsEventLike], start: dt.datetime, end: dt.datetime
) -> list[MinuteCredit]:
    """The minutes of the visit [start, end) not to be charged, in order, with reasons."""
    count = -(-(end - start) // MINUTE)  # the last, partial minute counts too
    credits: dict[int, MinuteCredit] = {}

    def credit(minute: int, reason: dict[str, Any]) -> None:
        credits.setdefault(minute, MinuteCredit(minute)).reasons.append(reason)

    for party, series in samples_by_party(events).items():
        frozen: dict[int, dt.timedelta] = {}
        # Packets due and lost per minute: whole counts from report pairs inside one minute
        # (nearly all of them: reports come every ~2 s), exact fractions from pairs that
        # straddle a minute's edge (ints are far cheaper than Fractions, same result).
        due_whole: dict[int, int] = {}
        lost_whole: dict[int, int] = {}
        due: dict[int, Fraction] = {}
        lost: dict[int, Fraction] = {}
        for lo, hi in _freezes(series):
            lo_c, hi_c = max(lo, start), min(hi, end)
            if hi_c < lo_c:
                continue
            for n in _minutes_touched(lo_c, hi_c, start, count):
                if hi_c <= start + n * MINUTE:
                    continue  # ended exactly as this minute began
                frozen[n] = max(frozen.get(n, dt.timedelta()), hi - lo)
        for a, b in itertools.pairwise(series):
            d_received, d_lost = b.received - a.received, b.lost - a.lost
            if d_received < 0 or d_lost < 0 or b.at <= a.at:
                continue  # counters restarted (a reconnection), or reports out of step
            span = b.at - a.at
            n = (a.at - start) // MINUTE
            if 0 <= n < count and b.at <= start + (n + 1) * MINUTE:  # inside one minute
                due_whole[n] = due_whole.get(n, 0) + d_received + d_lost
                lost_whole[n] = lost_whole.get(n, 0) + d_lost
                continue
            for n in _minutes_touched(a.at, b.at, start, count):
                m_lo, m_hi = start + n * MINUTE, start + (n + 1) * MINUTE
                overlap = min(b.at, m_hi) - max(a.at, m_lo)
                if overlap <= dt.timedelta():
                    continue
                share = Fraction(overlap // dt.timedelta(microseconds=1)) / Fraction(
                    span // dt.timedelta(microseconds=1)
                )
                due[n] = due.get(n, Fraction(0)) + share * (d_received + d_lost)
                lost[n] = lost.get(n, Fraction(0)) + share * d_lost
        for n, whole in due_whole.items():
            due[n] = due.get(n, Fraction(0)) + whole
            lost[n] = lost.get(n, Fraction(0)) + lost_whole[n]
        for n in sorted(set(frozen) | set(due)):
            if n in frozen:
                credit(
                    n,
                    {"party": party, "reason": "frozen", "seconds": int(frozen[n].total_seconds())},
                )
            if due.get(n) and lost[n] / due[n] >= LOSS_LIMIT:
                percent = int(lost[n] * 100 / due[n])
                credit(n, {"party": party, "reason": "packet_loss", "percent": percent})
    return [credits[n] for n in sorted(credits)]


def reason_words(reason: dict[str, Any], *, for_staff: bool = False) -> str:
    """A credit's reason in plain words, for the family's receipt (or for staff)."""
    if for_staff:
        who = "the visitor's" if reason.get("party") == "visitor" else "the resident's"
    else:
        who = "your" if reason.get("party") == "visitor" else "the resident's"
    if reason.get("reason") == "frozen":
        return f"Video froze on {who} screen for {reason.get('seconds', 5)} seconds"
    return f"{who.capitalize()} connection lost {reason.get('percent', 10)}% of its packets"
