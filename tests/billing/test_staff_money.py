"""Staff pages on the money: a visit's money trail, revenue per facility-local day with a
chart, refunds issued. Facility-scoped: another facility's staff get 404, roles without
the permission 403."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from openvisit.audit.service import AuditActor
from openvisit.billing import refunds, settlement
from openvisit.billing.gateway import SandboxGateway
from openvisit.scheduling import service as scheduling
from tests.factories import sign_in_staff, sign_in_visitor

from .helpers import fund
from .test_capture import FRIDAY, SATURDAY, book, family, hold_live, measured  # noqa: F401

NEW_YORK_2330 = dt.datetime(2026, 11, 28, 4, 30, tzinfo=dt.UTC)  # Friday 23:30 in New York


@pytest.fixture
def money_day(db, clock, settings, family):  # noqa: F811
    """Two visits that went live: Friday's (10 min 02 s, minute 2 frozen on the visitor's
    screen) settles at 23:30 on Friday in New York, already Saturday in UTC; Saturday's
    (whole 30 minutes) settles when it ends. And one visit the family cancelled."""

    def frozen_minute_2(visit):
        measured(db, visit, "resident", 2, frozen_ms=6000)

    friday = book(db, clock, family, FRIDAY)
    saturday = book(db, clock, family, SATURDAY)
    cancelled = book(db, clock, family, SATURDAY + dt.timedelta(hours=2))
    scheduling.cancel(
        db,
        clock,
        AuditActor("visitor", family.visitor.id, "Maria"),
        cancelled,
        cause="visitor",
        reason="Cancelled by the visitor",
    )
    settlement.settle_pending(db, clock, settings)
    hold_live(db, clock, settings, friday, stats_of=frozen_minute_2)
    clock.set(NEW_YORK_2330)
    assert settlement.settle_pending(db, clock, settings) == 1
    hold_live(db, clock, settings, saturday)
    assert settlement.settle_pending(db, clock, settings) == 1
    family.scheduler, family.officer, family.other_admin  # noqa: B018
    family.commit()
    return {"friday": friday, "saturday": saturday, "cancelled": cancelled}


def staff_client(app, persona, clock) -> TestClient:
    c = TestClient(app, base_url="https://testserver")
    sign_in_staff(c, persona, clock)
    return c


def test_a_visits_money_trail_shows_every_entry_in_plain_words_and_local_time(
    app,
    family,  # noqa: F811
    money_day,
    clock,
):
    visit = money_day["friday"]
    fid = family.facility.id
    with staff_client(app, family.scheduler, clock) as c:
        r = c.get(f"/api/v1/facilities/{fid}/visits/{visit.id}/money-trail")
        assert r.status_code == 200, r.text
        trail = r.json()
        assert [s["kind"] for s in trail["steps"]] == ["hold", "capture"]
        assert [s["held_after_cents"] for s in trail["steps"]] == [450, 0]
        assert trail["steps"][0]["entries"] == [
            {"account": "Maria Lopez's wallet", "amount_cents": -450},
            {"account": "Set aside for Maria Lopez's visits", "amount_cents": 450},
        ]
        capture = {e["account"]: e["amount_cents"] for e in trail["steps"][1]["entries"]}
        # 30 min connected, minute 2 credited: 29 x 15 c = $4.35 charged, 15 c back.
        assert capture == {
            "Set aside for Maria Lopez's visits": -450,
            "Riverside Jail revenue": 435,
            "Maria Lopez's wallet": 15,
        }
        assert (trail["charge_cents"], trail["released_cents"], trail["held_now_cents"]) == (
            435,
            15,
            0,
        )
        assert trail["credited_minutes"][0]["reasons"] == [
            "Video froze on the visitor's screen for 6 seconds"
        ]
        page = c.get(f"/staff/facilities/{fid}/visits/{visit.id}/money")
        assert page.status_code == 200
        text = page.text
        assert "Set aside when the visit was booked" in text
        assert "Charged for the connected time; the rest given back" in text
        assert "Riverside Jail revenue" in text and "+$4.35" in text and "\u2212$4.50" in text
        assert "27 Nov 2026, 11:30:00 PM EST" in text  # settled late on Friday, New York time
        assert "Video froze on the visitor&#39;s screen for 6 seconds" in text
        cancelled = c.get(f"/staff/facilities/{fid}/visits/{money_day['cancelled'].id}/money")
        assert "Given back in full" in cancelled.text
        assert "Cancelled since" in cancelled.text and "Cancelled by the visitor" in cancelled.text


def test_money_pages_are_404_for_another_facility_and_403_without_the_permission(
    app,
    family,  # noqa: F811
    money_day,
    clock,
):
    visit = money_day["friday"]
    fid = family.facility.id
    paths = [
        f"/api/v1/facilities/{fid}/visits/{visit.id}/money-trail",
        f"/api/v1/facilities/{fid}/revenue",
        f"/api/v1/facilities/{fid}/refunds",
        f"/staff/facilities/{fid}/visits/{visit.id}/money",
        f"/staff/facilities/{fid}/revenue",
        f"/staff/facilities/{fid}/refunds",
        f"/staff/facilities/{fid}/money-trail?reference={visit.reference}",
    ]
    with staff_client(app, family.other_admin, clock) as other:
        assert [other.get(p, follow_redirects=False).status_code for p in paths] == [404] * 7
        # and their own facility's id with our visit: not found either
        own = family.other_facility.id
        r = other.get(f"/api/v1/facilities/{own}/visits/{visit.id}/money-trail")
        assert r.status_code == 404
    with staff_client(app, family.officer, clock) as officer:
        assert [officer.get(p, follow_redirects=False).status_code for p in paths] == [403] * 7
        schedule = officer.get(f"/staff/facilities/{fid}/schedule?date=2026-11-27").text
        assert "Money trail" not in schedule and ">Revenue<" not in schedule
    with staff_client(app, family.scheduler, clock) as scheduler:
        schedule = scheduler.get(f"/staff/facilities/{fid}/schedule?date=2026-11-27").text
        assert f'/staff/facilities/{fid}/visits/{visit.id}/money"' in schedule
        assert f'href="/staff/facilities/{fid}/revenue">Revenue</a>' in schedule
        assert f'href="/staff/facilities/{fid}/refunds">Refunds</a>' in schedule


def test_revenue_is_counted_per_facility_local_day_with_a_chart_and_a_table(
    app,
    family,  # noqa: F811
    money_day,
    clock,
):
    fid = family.facility.id
    with staff_client(app, family.admin, clock) as c:
        r = c.get(f"/api/v1/facilities/{fid}/revenue?from=2026-11-26&to=2026-11-29")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["from"], body["to"], body["timezone"]) == (
            "2026-11-26",
            "2026-11-29",
            "America/New_York",
        )
        assert [(d["date"], d["visits_charged"], d["revenue_cents"]) for d in body["days"]] == [
            ("2026-11-26", 0, 0),
            ("2026-11-27", 1, 435),  # settled at 23:30 Friday in New York (Saturday in UTC)
            ("2026-11-28", 1, 450),
            ("2026-11-29", 0, 0),
        ]
        assert (body["total_cents"], body["total_visits_charged"]) == (885, 2)
        default = c.get(f"/api/v1/facilities/{fid}/revenue").json()
        assert len(default["days"]) == 30 and default["to"] == "2026-11-28"  # today, local
        page = c.get(f"/staff/facilities/{fid}/revenue?from=2026-11-26&to=2026-11-29")
        assert page.status_code == 200
        svg = page.text.split('<svg id="revenue-chart"')[1].split("</svg>")[0]
        assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
        assert svg.count("<rect ") == 2  # the two days with revenue
        assert "highest $4.50 on 28 November 2026" in svg
        table = page.text.split('id="revenue-table"')[1].split("</table>")[0]
        assert "Fri 27 November 2026</td><td>1</td><td>$4.35" in table
        assert "Total</th><td>2</td><td>$8.85" in table
        assert "<script" not in page.text.split("<main")[1]  # drawn by the server, no JS


def test_revenue_says_so_when_there_is_none_and_refuses_bad_dates(
    app,
    family,  # noqa: F811
    money_day,
    clock,
):
    fid = family.facility.id
    with staff_client(app, family.admin, clock) as c:
        empty = c.get(f"/staff/facilities/{fid}/revenue?from=2026-10-01&to=2026-10-31")
        assert empty.status_code == 200
        assert "No revenue on these days" in empty.text and "<svg" not in empty.text
        for query, field in (
            ("from=2026-13-01", "from"),
            ("to=yesterday", "to"),
            ("from=2026-11-20&to=2026-11-10", "from"),
            ("from=2025-01-01&to=2026-11-01", "to"),
        ):
            api = c.get(f"/api/v1/facilities/{fid}/revenue?{query}")
            assert api.status_code == 422, query
            assert api.json()["error"]["code"] == "invalid_date_range"
            assert field in api.json()["error"]["fields"], query
            page = c.get(f"/staff/facilities/{fid}/revenue?{query}")
            assert page.status_code == 422 and "<title>Error:" in page.text, query
            assert f'id="{field}-error"' in page.text, query
        refunds = c.get(f"/staff/facilities/{fid}/refunds?from=nope")
        assert refunds.status_code == 422 and 'id="from-error"' in refunds.text


def test_a_visit_is_found_by_its_reference_as_a_family_reads_it_out(
    app,
    family,  # noqa: F811
    money_day,
    clock,
):
    visit = money_day["saturday"]
    fid = family.facility.id
    spoken = visit.reference.lower().replace("-", " ")
    with staff_client(app, family.admin, clock) as c:
        r = c.get(f"/staff/facilities/{fid}/money-trail?reference={spoken}", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/staff/facilities/{fid}/visits/{visit.id}/money"
        missing = c.get(f"/staff/facilities/{fid}/money-trail?reference=ZZZZ-ZZZZ")
        assert "No visit at this facility has reference ZZZZ-ZZZZ" in missing.text


def test_refunds_issued_lists_who_when_how_much_and_why_for_the_facilitys_families(
    app,
    client,
    db,
    clock,
    settings,
    family,  # noqa: F811
):
    stranger = family.make_visitor("stranger@example.com", name="Sam Stranger")
    fund(db, stranger.id, 9_00, key="stranger-fund")  # never asked to visit anyone here
    old = family.make_visitor("old@example.com", name="Olive Old")
    from openvisit.approvals.models import Approval, ApprovalStatus

    db.add(
        Approval(
            facility_id=family.facility.id,
            visitor_id=old.id,
            resident_id=family.resident.id,
            relationship="aunt",
            status=ApprovalStatus.REVOKED,
            requested_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    )
    fund(db, old.id, 7_00, key="old-fund")  # posted on 1 November 2026 (the helper's clock)
    family.admin, family.other_admin  # noqa: B018
    family.commit()
    sign_in_visitor(client, family.visitor)
    r = client.post("/api/v1/me/wallet/refund", json={"idempotency_key": "family-asks-01"})
    assert r.status_code == 201, r.text
    clock.set(dt.datetime(2027, 5, 1, 17, tzinfo=dt.UTC))  # both wallets unused for 180 days
    assert refunds.refund_inactive_wallets(db, clock, settings, SandboxGateway()) == 2
    family.commit()
    fid = family.facility.id
    with staff_client(app, family.admin, clock) as c:
        body = c.get(f"/api/v1/facilities/{fid}/refunds?from=2026-11-01&to=2027-05-01").json()
        got = [(x["visitor"], x["amount_cents"], x["reason"]) for x in body["refunds"]]
        assert got == [("Olive Old", 7_00, "inactivity"), ("Maria Lopez", 100_00, "on_request")]
        assert body["total_cents"] == 107_00
        assert body["refunds"][1]["payout"].startswith("sandbox-payout-")
        page = c.get(f"/staff/facilities/{fid}/refunds?from=2026-11-01&to=2027-05-01").text
        assert "Sam Stranger" not in page
        listing = page.split('id="refund-list"')[1]
        assert "26 Nov 2026, 12:00 PM EST" in listing and "On request" in listing
        assert "1 May 2027, 1:00 PM EDT" in listing and "After 180 days unused" in listing
        totals = page.split('id="refund-totals"')[1].split("</table>")[0]
        assert "Account closed</td><td>0</td><td>$0.00" in totals
        assert "Total</th><td>2</td><td>$107.00" in totals
        none = c.get(f"/staff/facilities/{fid}/refunds?from=2026-12-01&to=2026-12-31").text
        assert "No refunds were paid on these days" in none
    with staff_client(app, family.other_admin, clock) as other:
        theirs = other.get(f"/api/v1/facilities/{family.other_facility.id}/refunds?from=2026-11-01")
        assert theirs.json()["refunds"] == []
