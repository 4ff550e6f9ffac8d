"""Sign-up never says who has an account (issue 10, item 12): a known address gets the
same page, status and words as a new one; its owner is told by e-mail instead."""

from __future__ import annotations

from sqlalchemy import func, select

from openvisit import worker
from openvisit.audit.models import AuditEvent
from openvisit.notifications.models import Notification
from openvisit.people.models import Visitor

from .helpers import STRONG, sign_up


def _form(client, email: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    client.get("/sign-up")
    return {
        "csrf_token": client.cookies["ov_csrf"],
        "legal_name": "Someone Trying",
        "email": email,
        "password": STRONG,
        "dob_day": "2",
        "dob_month": "4",
        "dob_year": "1990",
    }


def _visitors(db) -> int:  # type: ignore[no-untyped-def]
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(Visitor)))


def test_signing_up_with_a_known_address_looks_the_same_and_mails_its_owner(
    client, other_client, db, clock, settings, personas, smtp_server
):
    controller, inbox = smtp_server
    settings.smtp_host, settings.smtp_port = "127.0.0.1", controller.port
    maria = personas.visitor
    personas.commit()
    known, new = maria.email, "newcomer@example.com"

    answers = []
    for browser, email in ((client, known), (other_client, new)):
        posted = browser.post("/sign-up", data=_form(browser, email), follow_redirects=False)
        shown = browser.get(posted.headers["location"])
        answers.append(
            (
                posted.status_code,
                posted.headers["location"],
                shown.status_code,
                shown.text.replace(email, "ADDRESS").replace(browser.cookies["ov_csrf"], "T"),
            )
        )
    assert answers[0] == answers[1]
    assert answers[0][:3] == (303, "/sign-in", 200)
    assert "sent a link to ADDRESS" in answers[0][3]
    assert _visitors(db) == 2  # Maria, and the newcomer; nobody else
    db.refresh(maria)
    assert maria.legal_name == "Maria Lopez"  # the known account is untouched

    worker.run_jobs_once(db.info["factory"], clock, settings)
    mail = {to[0]: message for to, message in inbox.messages}
    assert set(mail) == {known, new}
    owner = mail[known]
    assert owner["Subject"] == "You already have an OpenVisit account"
    body = owner.get_payload(decode=True).decode()
    assert "you already have an account" in body and "/forgot-password" in body
    assert "token=" not in body  # nothing that signs anyone in
    assert "verify-email?token=" in mail[new].get_payload(decode=True).decode()
    tried = db.scalars(
        select(AuditEvent).where(AuditEvent.tag == "visitor:sign_up_with_existing_email")
    ).one()
    assert tried.subject_id == maria.id


def test_the_api_answers_alike_and_a_flood_of_sign_ups_sends_few_mails(client, db, personas):
    maria = personas.visitor
    personas.commit()
    new = sign_up(client, "newcomer@example.com")
    for _ in range(6):
        known = sign_up(client, maria.email.upper())
        assert known.status_code == new.status_code == 202
        # The same words, but for the address (each answer names the one it was given).
        assert known.json() == {
            "message": new.json()["message"].replace("newcomer@example.com", maria.email)
        }
    told = db.scalars(select(Notification).where(Notification.to_address == maria.email)).all()
    assert len(told) == 3  # at most three an hour: the form can't flood a mailbox
