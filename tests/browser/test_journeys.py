"""Whole journeys in real Chromium pages against a real server on loopback."""

from __future__ import annotations

import io
import re

import pyotp
import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from openvisit.clock import FrozenClock, SystemClock
from openvisit.notifications.models import Notification
from tests.billing.helpers import fund
from tests.factories import PASSWORD, Personas

pytestmark = pytest.mark.browser


def _seed(live_server):
    session = live_server.sessions()
    personas = Personas(session, FrozenClock(SystemClock().now()), live_server.settings)
    return session, personas


def _photo(path, colour):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return str(path)


def _staff_sign_in(page, base, persona):
    page.goto(f"{base}/staff/sign-in")
    page.get_by_label("E-mail address").fill(persona.member.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(pyotp.TOTP(persona.member.totp_secret).now())
    page.get_by_role("button", name="Sign in").click()


def test_a_visitor_signs_up_and_a_scheduler_confirms_their_identity(
    live_server, browser_context, staff_context, tmp_path
):
    base = live_server.url
    session, personas = _seed(live_server)
    scheduler = personas.scheduler
    session.commit()

    family = browser_context.new_page()
    family.goto(f"{base}/")
    family.get_by_role("link", name="Create an account").click()
    family.get_by_label("Full name").fill("Rosa Martinez")
    family.get_by_label("E-mail address").fill("rosa@example.com")
    family.get_by_label("Day").fill("9")
    family.get_by_label("Month").fill("4")
    family.get_by_label("Year").fill("1979")
    family.get_by_label("Password").fill("a long enough password")
    family.get_by_role("button", name="Create account").click()
    expect(family.get_by_role("status")).to_contain_text("sent a link to rosa@example.com")

    # SQLite transactions here take the write lock: read, then end the transaction.
    mail = session.scalars(
        select(Notification).where(Notification.to_address == "rosa@example.com")
    ).one()
    link = re.search(r"https?://\S+/verify-email\?token=\S+", mail.body).group(0)
    session.commit()
    family.goto(link)
    family.get_by_role("button", name="Confirm my e-mail address").click()
    family.goto(f"{base}/sign-in")
    family.get_by_label("E-mail address").fill("rosa@example.com")
    family.get_by_label("Password").fill("a long enough password")
    family.get_by_role("button", name="Sign in").click()
    expect(family.get_by_role("heading", name="Your account")).to_be_visible()

    family.goto(f"{base}/account/identity")
    family.get_by_label("Facility").select_option(label="Riverside Jail")
    family.get_by_label("Photo of your ID").set_input_files(_photo(tmp_path / "id.png", "navy"))
    family.get_by_label("Photo of you", exact=True).set_input_files(
        _photo(tmp_path / "me.png", "tan")
    )
    family.get_by_role("button", name="Send for checking").click()
    family.goto(f"{base}/account")
    expect(family.locator("#identity-status")).to_have_text("Being checked")

    staff = staff_context.new_page()
    _staff_sign_in(staff, base, scheduler)
    staff.get_by_role("link", name="Identity checks").click()
    staff.get_by_role("link", name="Check Rosa Martinez").click()
    expect(staff.locator("img").first).to_be_visible()
    staff.get_by_role("button", name="Confirm identity").click()
    expect(staff.get_by_role("status")).to_contain_text("Rosa Martinez")

    family.reload()
    expect(family.locator("#identity-status")).to_have_text("Confirmed")
    session.close()


def test_a_family_asks_to_visit_is_approved_and_books_a_time(
    live_server, browser_context, staff_context
):
    base = live_server.url
    session, personas = _seed(live_server)
    visitor, resident, scheduler = personas.visitor, personas.resident, personas.scheduler
    personas.kiosk  # noqa: B018 - the unit needs a kiosk
    fund(session, visitor.id)  # remote visits are paid: the booking holds its price
    session.commit()

    family = browser_context.new_page()
    family.goto(f"{base}/sign-in")
    family.get_by_label("E-mail address").fill(visitor.email)
    family.get_by_label("Password").fill(PASSWORD)
    family.get_by_role("button", name="Sign in").click()
    family.get_by_role("navigation").get_by_role("link", name="Visits").click()
    expect(family.locator("#no-upcoming")).to_be_visible()
    family.get_by_role("link", name="Ask to visit someone").click()
    family.get_by_label("Facility").select_option(label="Riverside Jail")
    family.get_by_label("Booking number").fill(resident.booking_number)
    family.get_by_label("Their last name").fill(resident.last_name)
    family.get_by_role("button", name="Continue").click()
    family.get_by_label("How do you know them?").select_option("sibling")
    family.get_by_role("button", name="Send request").click()
    expect(family.get_by_text("Waiting for staff")).to_be_visible()

    staff = staff_context.new_page()
    _staff_sign_in(staff, base, scheduler)
    staff.get_by_role("link", name="Approvals").click()
    staff.get_by_role("button", name=f"Approve {visitor.legal_name}").click()
    expect(staff.get_by_role("status")).to_contain_text(f"{visitor.legal_name} approved")

    family.reload()
    family.get_by_role("link", name="Book a visit with James").click()
    first = family.locator("input[name=start]").first
    label = family.locator("label.slot").first.inner_text().strip()
    first.check()
    family.get_by_role("button", name="Book this time").click()
    expect(family.locator("#booked-panel")).to_contain_text("Visit booked")
    family.get_by_role("link", name="Back to your visits").click()
    upcoming = family.locator("#upcoming-visits")
    expect(upcoming).to_contain_text("James Lopez")
    expect(upcoming).to_contain_text(label.split(" to ")[0])
    session.close()
