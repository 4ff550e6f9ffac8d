"""Outgoing mail: an outbox written in the caller's transaction, delivered afterwards.

``queue_email`` only writes a row, so a message exists exactly when the change
that justifies it commits. ``deliver_pending`` (the worker's job) sends the
unsent rows over SMTP and records each attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.notifications.models import Notification
from openvisit.redaction import redact_secrets

mail_log = logging.getLogger("openvisit.mail")

# After this many failed attempts a message is left for a person to look at.
MAX_ATTEMPTS = 5


def queue_email(
    session: Session, clock: Clock, settings: Settings, *, to: str, subject: str, body: str
) -> Notification:
    """Write one e-mail to the outbox. Expects the caller's transaction."""
    row = Notification(
        channel="email",
        to_address=to[:254],
        subject=subject[:200],
        body=body,
        created_at=clock.now(),
        attempts=0,
        last_error="",
    )
    session.add(row)
    session.flush()
    if settings.env == "production" or not settings.log_mail:
        # A mail body can carry a link that signs someone in: never in a production log.
        mail_log.info("mail %s queued to %s: %s", row.id, row.to_address, row.subject)
    else:
        # Development: the body shows what was sent, its links' tokens redacted (the
        # outbox row holds the whole message for a developer who needs the link).
        mail_log.info("mail to %s: %s\n%s", row.to_address, row.subject, redact_secrets(row.body))
    return row


def count_queued(session: Session, *, to: str, subject: str, since: dt.datetime) -> int:
    """How many e-mails with this subject went into the outbox for ``to`` since then."""
    return (
        session.scalar(
            select(func.count()).where(
                Notification.channel == "email",
                Notification.to_address == to[:254],
                Notification.subject == subject[:200],
                Notification.created_at >= since,
            )
        )
        or 0
    )


def _message(settings: Settings, row: Notification) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Message-ID"] = f"<notification-{row.id}@openvisit>"
    message.set_content(row.body)
    return message


def deliver_pending(session: Session, clock: Clock, settings: Settings, *, limit: int = 100) -> int:
    """Send unsent e-mails over SMTP; return how many were sent.

    Each row is marked in the caller's transaction (sent_at on success,
    attempts and last_error on failure). Without ``smtp_host`` nothing is sent.
    """
    if not settings.smtp_host:
        return 0
    rows = list(
        session.scalars(
            select(Notification)
            .where(
                Notification.channel == "email",
                Notification.sent_at.is_(None),
                Notification.attempts < MAX_ATTEMPTS,
            )
            .order_by(Notification.id)
            .limit(limit)
        )
    )
    if not rows:
        return 0
    sent = 0
    try:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
    except OSError as exc:
        for row in rows:
            row.attempts += 1
            row.last_error = f"connect: {exc}"[:500]
        session.flush()
        mail_log.warning(
            "could not reach the mail server %s:%s: %s", settings.smtp_host, settings.smtp_port, exc
        )
        return 0
    with smtp:
        for row in rows:
            row.attempts += 1
            try:
                smtp.send_message(_message(settings, row))
            except (smtplib.SMTPException, OSError) as exc:
                row.last_error = str(exc)[:500]
                mail_log.warning("mail %s to %s failed: %s", row.id, row.to_address, exc)
                continue
            row.sent_at = clock.now()
            row.last_error = ""
            sent += 1
    session.flush()
    return sent
