"""Every message is validated; a bad one gets an error with a reason and the
socket stays open (DESIGN §5). Twenty bad messages in a row are answered; the
twenty-first closes the socket."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from openvisit.signaling import messages
from openvisit.visits.models import VisitEvent
from tests.factories import sign_in_staff, sign_in_visitor

from .conftest import events, socket

STATS = {"type": "stats", "frames_decoded": 300, "packets_received": 420, "packets_lost": 2}

BAD = [
    ("not json at all", "malformed_json"),
    ('{"type": "stats", ', "malformed_json"),
    ("[1, 2, 3]", "invalid_message"),
    ('"hello"', "invalid_message"),
    ("{}", "invalid_message"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": 7}', "unknown_type"),
    ('{"type": "media", "state": "up"}', "unknown_type"),
    ('{"type": "subscribe", "parties": ["visitor"]}', "invalid_message"),
    ('{"type": "offer", "pc": "sideways", "sdp": "v=0"}', "invalid_message"),
    ('{"type": "hello", "extra": 1}', "invalid_message"),
    (json.dumps({**STATS, "packets_lost": -1}), "invalid_message"),
    (json.dumps({**STATS, "frames_decoded": "300"}), "invalid_message"),
    (json.dumps({**STATS, "frames_decoded": 10**13}), "invalid_message"),
    (json.dumps({**STATS, "jitter_ms": 1.5}), "invalid_message"),
    (json.dumps({**STATS, "rtt_ms": True}), "invalid_message"),
    ('{"type": "ice", "pc": "sideways"}', "invalid_message"),
    ('{"type": "offer", "pc": "publish", "sdp": ""}', "invalid_message"),
    ("[" * 5000 + "]" * 5000, "malformed_json"),
    (json.dumps({"type": "offer", "pc": "publish", "sdp": "v=0" * 6000}), "message_too_large"),
]


def test_each_bad_message_gets_an_error_with_a_reason_and_the_socket_stays_open(
    client, personas, visit, db
):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        for text, code in BAD:
            reply = ws.receive_json() if ws.send_text(text) is None else None
            assert reply["type"] == "error", text
            assert reply["code"] == code, (text, reply)
            assert reply["message"]
        ws.send_json({"type": "hello"})
        assert ws.receive_json()["type"] == "state"
    assert events(db, visit) == [("joined", "visitor"), ("left", "visitor")]


def test_the_reason_names_the_field_that_is_wrong(client, personas, visit):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        ws.send_json({**STATS, "packets_lost": -1})
        reply = ws.receive_json()
    assert "packets_lost" in reply["message"]


def test_binary_frames_are_refused_with_an_error(client, personas, visit):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        ws.send_bytes(b'{"type": "hello"}')
        assert ws.receive_json()["code"] == "binary_not_supported"
        ws.send_bytes(b"x" * (messages.MAX_MESSAGE_BYTES + 1))
        assert ws.receive_json()["code"] == "message_too_large"
        ws.send_json({"type": "hello"})
        assert ws.receive_json()["type"] == "state"


def test_twenty_bad_messages_in_a_row_are_answered_and_the_next_one_closes_the_socket(
    client, personas, visit
):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        for _ in range(20):
            ws.send_text("nope")
            assert ws.receive_json()["code"] == "malformed_json"
        ws.send_text("nope")
        assert ws.receive_json()["code"] == "too_many_errors"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400


def test_a_good_message_resets_the_count_of_bad_ones(client, personas, visit):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        for _ in range(3):
            for _ in range(15):
                ws.send_text("nope")
                assert ws.receive_json()["code"] == "malformed_json"
            ws.send_json({"type": "hello"})
            assert ws.receive_json()["type"] == "state"


class Mute(messages._Message):
    """A message type the protocol might grow, which the handler doesn't know."""

    type: str = "mute"


def _left(db, visit) -> list[str]:  # type: ignore[no-untyped-def]
    """How each "left" of the visit came about ("leave" or "disconnect")."""
    db.expire_all()
    return [
        e.data["how"]
        for e in db.scalars(
            select(VisitEvent).where(VisitEvent.visit_id == visit.id, VisitEvent.kind == "left")
        )
    ]


def test_an_unknown_message_type_is_refused_and_never_taken_for_a_leave(
    client, personas, visit, db, monkeypatch
):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        ws.send_json({"type": "mute"})
        assert ws.receive_json()["code"] == "unknown_type"
        ws.send_json({"type": "hello"})
        assert ws.receive_json()["type"] == "state"
        assert _left(db, visit) == []
        # One that got past validation but that no branch handles: a fault of ours,
        # answered as one; the visitor may come back, the visit goes on.
        monkeypatch.setattr(messages, "parse", lambda text, data=None: Mute())
        ws.send_json({"type": "mute"})
        assert ws.receive_json()["code"] == "internal_error"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1011
    assert _left(db, visit) == ["disconnect"]
    assert db.get(type(visit), visit.id).state.value == "open"


def test_media_messages_that_cant_be_used_get_a_reason_and_change_nothing(
    client, personas, visit, db
):
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        for message, words in (
            ({"type": "offer", "pc": "publish", "sdp": "v=0\r\n"}, "no audio or video"),
            ({"type": "offer", "pc": "publish", "sdp": "m=oops"}, "offer could not be used"),
            ({"type": "offer", "pc": "subscribe", "sdp": "v=0\r\n"}, "server makes the offer"),
            ({"type": "answer", "pc": "publish", "sdp": "v=0\r\n"}, "server answers"),
            ({"type": "answer", "pc": "subscribe", "sdp": "v=0\r\n"}, "no offer waiting"),
            (
                {
                    "type": "ice",
                    "pc": "publish",
                    "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                },
                "before its candidates",
            ),
        ):
            ws.send_json(message)
            reply = ws.receive_json()
            assert reply["code"] == "media_failed", reply
            assert words in reply["message"], reply
    assert events(db, visit) == [("joined", "visitor"), ("left", "visitor")]


def test_a_monitor_sending_media_or_leaving_records_nothing(
    third_client, personas, visit, db, clock
):
    sign_in_staff(third_client, personas.officer, clock)
    with socket(third_client, visit.id) as ws:
        ws.receive_json()
        ws.send_json({"type": "offer", "pc": "publish", "sdp": "v=0"})
        assert "don't send media" in ws.receive_json()["message"]
        ws.send_json({"type": "leave"})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1000
    assert events(db, visit) == []


def _fuzz_corpus(seed: int, count: int) -> list[str]:
    """Malformed, oversized and out-of-order messages: mutations of good ones."""
    rng = random.Random(seed)
    good = [
        {"type": "hello"},
        STATS,
        {"type": "subscribe"},
        {"type": "ice", "pc": "subscribe", "candidate": "x", "sdp_mid": "0", "sdp_mline_index": 0},
        {"type": "answer", "pc": "publish", "sdp": "v=0"},
    ]
    junk: list[object] = [None, -1, 2**70, 1.5, "", "x" * 300, [], {}, True, "up", "\u0000"]
    corpus = []
    for _ in range(count):
        base = dict(rng.choice(good))
        how = rng.randrange(6)
        if how == 0:
            base[rng.choice(list(base))] = rng.choice(junk)
            corpus.append(json.dumps(base))
        elif how == 1:
            base[rng.choice(["zz", "type ", "pc", "sdp"])] = rng.choice(junk)
            corpus.append(json.dumps(base))
        elif how == 2:
            text = json.dumps(base)
            corpus.append(text[: rng.randrange(len(text))])
        elif how == 3:
            corpus.append(json.dumps(base) + "x" * messages.MAX_MESSAGE_BYTES)
        elif how == 4:
            corpus.append("".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(40))))
        else:
            corpus.append(json.dumps(base))  # a valid one, at an odd moment
    return corpus


def _is_media_message(text: str) -> bool:
    try:
        return messages.parse(text).type in messages.MEDIA_TYPES
    except messages.BadMessage:
        return False


def test_a_fuzzed_stream_gets_errors_and_disturbs_nothing(client, personas, visit, db, clock):
    # After each fuzzed message a misdirected offer: its "media_failed" marks the end of
    # the replies to the fuzzed one (and, being valid, resets the count of bad ones).
    marker = {"type": "offer", "pc": "subscribe", "sdp": "v=0"}
    corpus = [t for t in _fuzz_corpus(seed=4, count=200) if not _is_media_message(t)]
    assert len(corpus) > 100
    sign_in_visitor(client, personas.visitor)
    with socket(client, visit.id) as ws:
        ws.receive_json()
        for text in corpus:
            ws.send_text(text)
            ws.send_json(marker)
            replies = []
            while not replies or replies[-1].get("code") != "media_failed":
                replies.append(ws.receive_json())
            assert all(r["type"] in ("error", "state") for r in replies), replies
        clock.advance(seconds=5)
        ws.send_json({**STATS, "jitter_ms": 12, "rtt_ms": 40})
        ws.send_json({"type": "hello"})
        assert ws.receive_json()["type"] == "state"
        db.expire_all()
        stats = db.scalars(
            select(VisitEvent)
            .where(VisitEvent.visit_id == visit.id, VisitEvent.kind == "stats")
            .order_by(VisitEvent.id.desc())
        ).first()
        assert stats.data == {
            "frames_decoded": 300,
            "packets_received": 420,
            "packets_lost": 2,
            "jitter_ms": 12,
            "rtt_ms": 40,
        }
    assert db.get(type(visit), visit.id).state.value == "open"
