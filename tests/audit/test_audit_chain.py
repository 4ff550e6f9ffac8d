from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import text

from openvisit.audit import service as audit
from openvisit.audit.service import SYSTEM, AuditActor


def _write_three(db, clock):
    actor = AuditActor("staff", 7, "officer@riverside.example", "10.1.2.3")
    for n in range(3):
        audit.record(
            db,
            tag="resident:updated",
            actor=actor,
            at=clock.advance(seconds=1),
            subject=("resident", n),
            data={"n": n},
        )
    audit.record(db, tag="facility:created", actor=SYSTEM, at=clock.now())


def test_an_untouched_chain_verifies(db, clock):
    _write_three(db, clock)
    report = audit.verify_chain(db)
    assert report.ok and report.checked == 4 and report.problems == []


def test_the_audit_table_refuses_updates_and_deletes(db, clock):
    _write_three(db, clock)
    db.commit()
    for statement in (
        "UPDATE audit_events SET tag = 'x' WHERE id = 2",
        "DELETE FROM audit_events WHERE id = 2",
    ):
        nested = db.begin_nested()
        with pytest.raises(Exception, match="append-only"):
            db.execute(text(statement))
        nested.rollback()


def _without_triggers(db):
    """What someone with raw database access could do: drop the guard first."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change"))
    else:
        db.execute(text("DROP TRIGGER audit_events_no_update"))
        db.execute(text("DROP TRIGGER audit_events_no_delete"))


def test_verify_finds_an_edited_row(db, clock):
    _write_three(db, clock)
    _without_triggers(db)
    db.execute(text("UPDATE audit_events SET actor_label = 'someone else' WHERE id = 2"))
    db.expire_all()
    report = audit.verify_chain(db)
    assert not report.ok
    assert report.problems == ["event 2: content was changed after it was written"]


def test_verify_finds_a_deleted_row(db, clock):
    _write_three(db, clock)
    _without_triggers(db)
    db.execute(text("DELETE FROM audit_events WHERE id = 2"))
    db.expire_all()
    report = audit.verify_chain(db)
    assert not report.ok
    assert "events 2..2 are missing" in report.problems
    assert "event 3: does not follow the event before it" in report.problems


def test_verify_finds_a_rewritten_row_whose_hash_was_recomputed(db, clock):
    """Recomputing the edited row's own hash breaks the link to the next row."""
    _write_three(db, clock)
    _without_triggers(db)
    row = db.get(audit.AuditEvent, 2)
    row.data = {"n": 99}
    row.hash = audit._digest(row.prev_hash, row)
    db.flush()
    db.expire_all()
    report = audit.verify_chain(db)
    assert report.problems == ["event 3: does not follow the event before it"]


def test_the_cli_reports_a_tampered_log_with_a_failing_exit_code(tmp_path, clock):
    from openvisit.db import make_engine, make_sessionmaker
    from openvisit.dbadmin import upgrade

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        _write_three(session, clock)
        session.commit()
    env = {"OPENVISIT_DATABASE_URL": url, "OPENVISIT_SECRET_KEY": "k", "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [sys.executable, "-m", "openvisit", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "audit log intact: 4 events" in ok.stdout
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET ip = '6.6.6.6' WHERE id = 1"))
    bad = subprocess.run(
        [sys.executable, "-m", "openvisit", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "TAMPERED" in bad.stdout and "event 1: content was changed" in bad.stdout
    engine.dispose()
