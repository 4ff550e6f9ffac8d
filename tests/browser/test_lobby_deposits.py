"""A scheduler at the lobby records cash in Chromium: finds the family, records the money
once however often the button is pressed, reads a receipt without the balance; the pages
pass axe."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from openvisit.audit.models import AuditEvent
from openvisit.billing import service as billing
from openvisit.clock import FrozenClock, SystemClock
from openvisit.facilities.models import FacilitySettings
from tests.factories import PASSWORD, Personas
from tests.scheduling.conftest import approve

from .test_accessibility import violations

pytestmark = pytest.mark.browser


def test_a_scheduler_records_cash_for_a_family_found_by_name(live_server, staff_context):
    session = live_server.sessions()
    personas = Personas(session, FrozenClock(SystemClock().now()), live_server.settings)
    scheduler = personas.scheduler
    approve(session, personas.visitor, personas.resident)  # and $100 in her wallet
    fid = personas.facility.id
    session.get(FacilitySettings, fid).lobby_deposit_daily_cap_cents = 50_00
    visitor_id = personas.visitor.id
    session.commit()
    session.close()

    base, page, found = live_server.url, staff_context.new_page(), []
    page.goto(base + "/staff/sign-in")
    page.get_by_label("E-mail address").fill(scheduler.member.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(pyotp.TOTP(scheduler.member.totp_secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base}/staff/facilities/{fid}")
    page.get_by_role("link", name="Lobby deposits").click()
    found += violations(page)

    page.get_by_label("Visitor's name or e-mail address").fill("m")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#q-error")).to_contain_text("Enter at least 2 letters")
    found += violations(page)
    page.get_by_label("Visitor's name or e-mail address").fill("lopez")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#lobby-results")).to_contain_text("maria@example.com")
    found += violations(page)
    page.get_by_role("link", name="Record a deposit for Maria Lopez").click()
    expect(page.locator("#lobby-visitor")).to_contain_text("Maria Lopez")
    found += violations(page)

    page.get_by_label("Cash").check()
    page.get_by_label("Amount in dollars").fill("60")
    page.get_by_role("button", name="Record deposit").click()
    expect(page.locator("#error-summary")).to_contain_text("at most $50.00")
    expect(page.get_by_label("Amount in dollars")).to_have_value("60")
    found += violations(page)

    page.get_by_label("Amount in dollars").fill("20")
    page.get_by_role("button", name="Record deposit").dblclick()
    expect(page.locator("#lobby-receipt")).to_contain_text("Deposit recorded")
    expect(page.locator("#lobby-receipt-amount")).to_have_text("$20.00")
    expect(page.get_by_text("$20.00 recorded for Maria Lopez")).to_be_visible()
    assert "$120.00" not in page.content() and "$100.00" not in page.content()
    found += violations(page)
    assert found == []

    session = live_server.sessions()
    events = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.tag == "wallet:deposit_recorded")
    )
    assert events == 1  # pressed twice, recorded once
    assert billing.wallet_summary(session, visitor_id).available_cents == 120_00
    session.close()
