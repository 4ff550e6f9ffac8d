"""Residents at kiosks, in real Chromium: a lobby terminal has no resident sign-in, and a
housing kiosk answers another unit's resident exactly as it answers a wrong PIN."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from openvisit.auth.service import token_digest
from openvisit.clock import FrozenClock, SystemClock
from openvisit.facilities.models import Kiosk, KioskLocation
from tests.factories import PIN, Personas

pytestmark = pytest.mark.browser


def _set_up(page, base, code):
    page.goto(f"{base}/kiosk/activate?code={code}")
    page.get_by_role("button", name="Set up kiosk").click()


def _sign_in(page, booking, pin):
    page.get_by_label("Booking number").fill(booking)
    page.get_by_label("PIN").fill(pin)
    page.get_by_role("button", name="Sign in").click()


def test_a_lobby_terminal_shows_no_resident_sign_in(live_server, browser_context):
    session = live_server.sessions()
    personas = Personas(session, FrozenClock(SystemClock().now()), live_server.settings)
    personas.resident  # noqa: B018
    lobby = Kiosk(
        facility_id=personas.facility.id,
        unit_id=None,
        name="Lobby 1",
        location=KioskLocation.LOBBY,
        created_at=personas.clock.now(),
        credential_hash=token_digest("lobby-device-code"),
        credential_issued_at=personas.clock.now(),
    )
    session.add(lobby)
    session.commit()
    session.close()
    page = browser_context.new_page()
    _set_up(page, live_server.url, "lobby-device-code")
    expect(page.get_by_role("heading", name="This is a lobby terminal")).to_be_visible()
    expect(
        page.get_by_text("Residents sign in at a kiosk in their own housing unit")
    ).to_be_visible()
    expect(page.get_by_label("PIN")).to_have_count(0)


def test_another_units_resident_is_told_what_a_wrong_pin_is_told(live_server, browser_context):
    session = live_server.sessions()
    personas = Personas(session, FrozenClock(SystemClock().now()), live_server.settings)
    personas.resident  # noqa: B018
    personas.kiosk.credential_hash = token_digest("unit-a-device-code")
    personas.kiosk.credential_issued_at = personas.clock.now()
    unit_b = personas.make_unit(personas.facility, "Unit B")
    personas.make_resident(personas.facility, unit_b, "B-5005", "Tom", "Hart")
    session.commit()
    session.close()
    page = browser_context.new_page()
    _set_up(page, live_server.url, "unit-a-device-code")

    _sign_in(page, "B-1001", "111333")
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    wrong_pin = summary.inner_text()
    _sign_in(page, "B-5005", PIN)  # Tom's right PIN, at Unit A's kiosk
    expect(summary).to_be_visible()
    assert summary.inner_text() == wrong_pin
    assert "another housing unit" not in page.content()
    expect(page.get_by_text("Hello Tom")).to_have_count(0)

    _sign_in(page, "B-1001", PIN)
    expect(page.get_by_text("Hello James")).to_be_visible()
