"""The worker loop that `openvisit serve` runs: one tick delivers the outbox."""

from __future__ import annotations

from sqlalchemy import select

from openvisit import worker
from openvisit.notifications.models import Notification
from openvisit.notifications.service import queue_email


def test_a_worker_tick_delivers_queued_mail_and_a_second_tick_sends_nothing_again(
    db, clock, settings, smtp_server
):
    controller, inbox = smtp_server
    settings.smtp_host, settings.smtp_port = "127.0.0.1", controller.port
    queue_email(db, clock, settings, to="ana@example.com", subject="Visit booked", body="Hi")
    db.commit()
    factory = db.info["factory"]
    worker.run_jobs_once(factory, clock, settings)
    worker.run_jobs_once(factory, clock, settings)
    assert [m["Subject"] for _to, m in inbox.messages] == ["Visit booked"]
    db.expire_all()
    assert db.scalars(select(Notification)).one().sent_at == clock.now()


def test_a_failing_job_is_logged_and_the_loop_goes_on(db, clock, settings, caplog, monkeypatch):
    def broken(session, clock, settings):
        raise RuntimeError("boom")

    ran = []
    monkeypatch.setattr(
        worker,
        "jobs",
        lambda gateway: [("broken", broken), ("next", lambda s, c, st: ran.append(True))],
    )
    worker.run_jobs_once(db.info["factory"], clock, settings)
    assert "worker job 'broken' failed" in caplog.text
    assert ran == [True]
