"""axe-core (bundled by axe-playwright-python) on the main pages: no WCAG 2.2 AA violation."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from openvisit.clock import FrozenClock, SystemClock
from tests.factories import PASSWORD, Personas
from tests.scheduling.conftest import approve

pytestmark = pytest.mark.browser
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def violations(page) -> list[str]:
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": TAGS}})
    found = []
    for v in results.response["violations"]:
        targets = [n["target"] for n in v["nodes"]][:3]
        found.append(f"{page.url}: {v['id']} ({v['impact']}) {targets}")
    return found


def test_family_pages_have_no_accessibility_violations(live_server, browser_context):
    session = live_server.sessions()
    personas = Personas(session, FrozenClock(SystemClock().now()), live_server.settings)
    personas.kiosk  # noqa: B018
    approve(session, personas.visitor, personas.resident)
    session.commit()
    session.close()
    base, page, found = live_server.url, browser_context.new_page(), []
    for path in ("/", "/sign-up", "/sign-in", "/forgot-password"):
        page.goto(base + path)
        found += violations(page)
    page.goto(base + "/sign-up")
    page.get_by_role("button", name="Create account").click()  # the error state
    found += violations(page)
    page.goto(base + "/sign-in")
    page.get_by_label("E-mail address").fill(personas.visitor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    for path in (
        "/account",
        "/visits",
        f"/visits/book?resident_id={personas.resident.id}",
        "/visits/find",
        "/account/identity",
        "/account/security",
        "/wallet",
    ):
        page.goto(base + path)
        found += violations(page)
    assert found == []


def test_staff_and_kiosk_pages_have_no_accessibility_violations(live_server, staff_context):
    import pyotp

    session = live_server.sessions()
    personas = Personas(session, FrozenClock(SystemClock().now()), live_server.settings)
    admin = personas.admin
    personas.resident  # noqa: B018
    session.commit()
    session.close()
    base, page, found = live_server.url, staff_context.new_page(), []
    for path in ("/staff/sign-in", "/kiosk"):
        page.goto(base + path)
        found += violations(page)
    page.goto(base + "/staff/sign-in")
    page.get_by_label("E-mail address").fill(admin.member.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(pyotp.TOTP(admin.member.totp_secret).now())
    page.get_by_role("button", name="Sign in").click()
    fid = personas.facility.id
    for tail in (
        "",
        "/residents",
        "/schedule",
        "/approvals",
        "/identity-reviews",
        "/closures",
        "/units",
        "/kiosks",
        "/settings",
        "/audit",
        "/visits/new",
    ):
        page.goto(f"{base}/staff/facilities/{fid}{tail}")
        found += violations(page)
    assert found == []
