from __future__ import annotations

from sqlalchemy import select

from openvisit.notifications.models import Notification
from openvisit.notifications.service import deliver_pending, queue_email
from tests.conftest import _free_smtp_port


def test_queued_mail_is_logged_and_delivered_once_over_smtp(
    db, clock, settings, smtp_server, caplog
):
    controller, inbox = smtp_server
    settings.smtp_host, settings.smtp_port = "127.0.0.1", controller.port
    with caplog.at_level("INFO", logger="openvisit.mail"):
        row = queue_email(
            db,
            clock,
            settings,
            to="ana@example.com",
            subject="Hello",
            body="Open https://example.test/verify-email?token=abc",
        )
    assert "verify-email?token=[redacted]" in caplog.text and "abc" not in caplog.text
    assert row.sent_at is None

    assert deliver_pending(db, clock, settings) == 1
    [(recipients, message)] = inbox.messages
    assert recipients == ["ana@example.com"]
    assert message["Subject"] == "Hello" and message["From"] == settings.mail_from
    assert "verify-email?token=abc" in message.get_payload(decode=True).decode()
    db.refresh(row)
    assert row.sent_at == clock.now() and row.attempts == 1 and row.last_error == ""

    assert deliver_pending(db, clock, settings) == 0
    assert len(inbox.messages) == 1


def test_an_unreachable_mail_server_is_recorded_and_retried_later(db, clock, settings):
    settings.smtp_host, settings.smtp_port = "127.0.0.1", _free_smtp_port()  # nothing listens
    row = queue_email(db, clock, settings, to="ana@example.com", subject="Hi", body="Body")
    assert deliver_pending(db, clock, settings) == 0
    db.refresh(row)
    assert row.sent_at is None and row.attempts == 1 and row.last_error


def test_without_an_smtp_host_mail_stays_in_the_outbox(db, clock, settings):
    queue_email(db, clock, settings, to="ana@example.com", subject="Hi", body="Body")
    assert deliver_pending(db, clock, settings) == 0
    assert db.scalar(select(Notification.sent_at)) is None
