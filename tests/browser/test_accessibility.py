"""axe-core (bundled by axe-playwright-python) on the main pages: no WCAG 2.2 AA violation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe

from openvisit.clock import FrozenClock, SystemClock
from openvisit.visits.models import Visit, VisitState, VisitType
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
        "/account/close",
    ):
        page.goto(base + path)
        found += violations(page)
    page.get_by_role("button", name="Confirm").click()  # neither yes nor no: the error state
    assert page.title().startswith("Error:")
    found += violations(page)
    assert found == []


def _a_settled_visit(session, personas: Personas) -> Visit:
    """Yesterday's 30-minute visit, held, live for all of it and settled: money to show."""
    from openvisit.audit.service import SYSTEM
    from openvisit.billing import refunds, settlement
    from openvisit.billing import service as billing
    from openvisit.billing.gateway import SandboxGateway
    from openvisit.visits import service as visits
    from openvisit.visits import states

    now = SystemClock().now().replace(microsecond=0)
    start = now - dt.timedelta(days=1)
    visit = Visit(
        facility_id=personas.facility.id,
        resident_id=personas.resident.id,
        visitor_id=personas.visitor.id,
        visit_type=VisitType.REMOTE,
        resident_kiosk_id=personas.kiosk.id,
        starts_at=start,
        ends_at=start + dt.timedelta(minutes=30),
        state=VisitState.SCHEDULED,
        participants=[],
        rate_cents_per_minute=Decimal(15),
        recorded=True,
        reference="AXES-TEST",
        booked_by_type="visitor",
        booked_by_id=personas.visitor.id,
        created_at=start - dt.timedelta(days=2),
    )
    session.add(visit)
    session.flush()
    clock = FrozenClock(start - dt.timedelta(days=2))
    billing.hold_for_visit(session, clock, visit)
    states.transition(session, visit, VisitState.OPEN, actor=SYSTEM, at=start, cause="test")
    for party in ("visitor", "resident"):
        visits.record_event(session, visit, kind="media_up", party=party, at=start)
    states.transition(
        session, visit, VisitState.COMPLETED, actor=SYSTEM, at=visit.ends_at, cause="test"
    )
    clock.set(visit.ends_at)
    assert settlement.settle_visit(session, clock, visit)
    refunds.refund_balance(
        session, clock, SandboxGateway(), SYSTEM, personas.visitor.id, key="refund:axe:test"
    )
    return visit


def test_staff_and_kiosk_pages_have_no_accessibility_violations(live_server, staff_context):
    import pyotp

    session = live_server.sessions()
    personas = Personas(session, FrozenClock(SystemClock().now()), live_server.settings)
    admin = personas.admin
    personas.resident  # noqa: B018
    approve(session, personas.visitor, personas.resident)
    visit = _a_settled_visit(session, personas)
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
        "/revenue",
        "/revenue?from=2020-01-01&to=2020-01-31",  # the empty state
        "/revenue?from=2026-13-01",  # the error state
        "/refunds",
        f"/visits/{visit.id}/money",
    ):
        page.goto(f"{base}/staff/facilities/{fid}{tail}")
        found += violations(page)
    page.goto(f"{base}/staff/facilities/{fid}/revenue")
    assert page.locator("#revenue-chart rect").count() == 1
    page.goto(f"{base}/staff/facilities/{fid}/refunds")
    assert page.get_by_text("On request").count() >= 1
    assert found == []


def test_the_money_pages_fit_a_phone_screen(live_server, browser_context):
    """Staff on a phone (390 px): the revenue chart scales down, nothing scrolls sideways but
    the tables' own wrappers."""
    import pyotp

    session = live_server.sessions()
    personas = Personas(session, FrozenClock(SystemClock().now()), live_server.settings)
    admin = personas.admin
    approve(session, personas.visitor, personas.resident)
    visit = _a_settled_visit(session, personas)
    session.commit()
    session.close()
    base, page = live_server.url, browser_context.new_page()
    page.goto(base + "/staff/sign-in")
    page.get_by_label("E-mail address").fill(admin.member.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(pyotp.TOTP(admin.member.totp_secret).now())
    page.get_by_role("button", name="Sign in").click()
    fid, found = personas.facility.id, []
    for tail in ("/revenue", "/refunds", f"/visits/{visit.id}/money"):
        page.goto(f"{base}/staff/facilities/{fid}{tail}")
        found += violations(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (tail, width)
    page.goto(f"{base}/staff/facilities/{fid}/revenue")
    box = page.locator("#revenue-chart").bounding_box()
    assert box is not None and box["width"] <= 390
    assert found == []
