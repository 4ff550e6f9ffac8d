"""A facility admin invites an officer, who joins from the e-mailed link in real Chromium:
chooses a password, scans (here: computes) the authenticator secret, signs in; the admin
then deactivates them and their next page is the sign-in (issue 10, item 8)."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect

from openvisit.clock import SystemClock
from openvisit.notifications.service import deliver_pending

from .test_journeys import _seed, _staff_sign_in

pytestmark = pytest.mark.browser

NEW_PASSWORD = "my own long passphrase"


def test_an_invited_officer_joins_from_the_emailed_link_and_is_later_deactivated(
    live_server, browser_context, staff_context, smtp_server
):
    controller, inbox = smtp_server
    base = live_server.url
    session, personas = _seed(live_server)
    admin = personas.admin
    session.commit()

    boss = staff_context.new_page()
    _staff_sign_in(boss, base, admin)
    boss.get_by_role("link", name="Staff", exact=True).click()
    boss.get_by_role("link", name="Invite a staff member").click()
    boss.get_by_label("Full name").fill("Dana Reyes")
    boss.get_by_label("Work e-mail address").fill("dana@riverside.example")
    boss.get_by_label("Officer").check()
    boss.get_by_role("button", name="Send invitation").click()
    expect(boss.get_by_role("status")).to_contain_text("We've e-mailed Dana Reyes")
    expect(boss.get_by_role("row", name=re.compile("Dana Reyes"))).to_contain_text("Invited")
    # Nothing on the admin's page could let them sign in as Dana.
    assert "otpauth" not in boss.content()

    # The outbox goes out over a real SMTP server on loopback.
    live_server.settings.smtp_host, live_server.settings.smtp_port = "127.0.0.1", controller.port
    assert deliver_pending(session, SystemClock(), live_server.settings) == 1
    session.commit()
    [(recipients, message)] = inbox.messages
    assert recipients == ["dana@riverside.example"]
    body = message.get_payload(decode=True).decode()
    link = re.search(r"https?://\S+/staff/invitation\?token=\S+", body).group(0)

    dana = browser_context.new_page()
    dana.goto(link)
    expect(dana.get_by_role("heading", name="Join OpenVisit")).to_be_visible()
    dana.get_by_label("Choose a password").fill("short")
    dana.get_by_role("button", name="Continue").click()
    expect(dana).to_have_title(re.compile("^Error: "))
    dana.get_by_label("Choose a password").fill(NEW_PASSWORD)
    dana.get_by_role("button", name="Continue").click()
    expect(dana.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    secret = dana.locator("#totp-secret").inner_text().strip()
    dana.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    dana.get_by_role("button", name="Sign in").click()
    expect(dana.get_by_text("Riverside Jail").first).to_be_visible()

    # The link was spent.
    dana.goto(link)
    expect(dana.get_by_text("already been used")).to_be_visible()

    # She signs in again with her own two factors.
    dana.goto(f"{base}/staff")
    dana.get_by_role("button", name="Sign out").click()
    dana.goto(f"{base}/staff/sign-in")
    dana.get_by_label("E-mail address").fill("dana@riverside.example")
    dana.get_by_label("Password").fill(NEW_PASSWORD)
    dana.get_by_role("button", name="Continue").click()
    expect(dana.get_by_role("heading", name="Enter your security code")).to_be_visible()
    # The next 30-second step's code: a code already used doesn't work twice.
    totp = pyotp.TOTP(secret)
    dana.get_by_label("6-digit code").fill(totp.at(SystemClock().now().timestamp() + 30))
    dana.get_by_role("button", name="Sign in").click()
    expect(dana.get_by_text("Riverside Jail").first).to_be_visible()

    boss.reload()
    boss.get_by_role("link", name="Manage Dana Reyes").click()
    boss.get_by_role("button", name="Deactivate Dana Reyes").click()
    expect(boss.get_by_role("status")).to_contain_text("Dana Reyes is deactivated")

    dana.goto(f"{base}/staff")
    expect(dana.get_by_role("heading", name="Staff sign in")).to_be_visible()
    session.close()
