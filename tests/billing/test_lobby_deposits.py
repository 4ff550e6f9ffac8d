"""Cash and money orders recorded at a facility's lobby (issue 10, item 2).

The finding: an admin of Lakeview (B) put $500 into the wallet of Maria, a Riverside (A)
family, by her raw visitor id; Maria cashed it out as a card payout, and Lakeview's
refunds list then showed her name. Now staff find a family among their own facility's
families, a deposit names the reference that search gave, another facility's family is
"not found", a day's deposits are capped, every deposit is audited, and nothing staff see
shows the wallet's balance.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openvisit.approvals.models import Approval, ApprovalStatus
from openvisit.audit.models import AuditEvent
from openvisit.billing import ledger
from openvisit.billing import service as billing
from openvisit.billing.gateway import SandboxGateway
from openvisit.billing.lobby import recorded_today_cents, visitor_reference
from openvisit.billing.models import AccountKind
from openvisit.facilities.models import FacilitySettings
from tests.factories import sign_in_staff, sign_in_visitor

from .helpers import entry_total, fund, transaction_count

DEPOSIT_TAG = "wallet:deposit_recorded"


@pytest.fixture
def family(personas, db):
    """Maria asked to visit James at Riverside and was approved; Lakeview is the other
    facility, whose admin must reach nothing of hers."""
    db.add(
        Approval(
            facility_id=personas.facility.id,
            visitor_id=personas.visitor.id,
            resident_id=personas.resident.id,
            relationship="sister",
            status=ApprovalStatus.APPROVED,
            requested_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        )
    )
    db.flush()
    personas.scheduler, personas.officer, personas.admin, personas.other_admin  # noqa: B018
    personas.other_facility  # noqa: B018
    personas.commit()
    return personas


def staff_client(app, persona, clock) -> TestClient:
    c = TestClient(app, base_url="https://testserver")
    sign_in_staff(c, persona, clock)
    return c


def search(c: TestClient, facility_id: int, q: str):
    return c.get(f"/api/v1/facilities/{facility_id}/lobby-visitors", params={"q": q})


def deposit(c: TestClient, facility_id: int, visitor: str, cents: int = 20_00, **body):
    return c.post(
        f"/api/v1/facilities/{facility_id}/wallet-deposits",
        json={"visitor": visitor, "amount_cents": cents, "method": "cash", **body},
    )


def maria_ref(c: TestClient, family) -> str:
    found = search(c, family.facility.id, "lopez")
    assert found.status_code == 200, found.text
    (maria,) = found.json()
    assert (maria["name"], maria["email"]) == ("Maria Lopez", "maria@example.com")
    return str(maria["reference"])


def audited(db) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.tag == DEPOSIT_TAG)))


def set_cap(db, facility_id: int, cents: int) -> None:
    row = db.get(FacilitySettings, facility_id)
    row.lobby_deposit_daily_cap_cents = cents
    db.commit()


# --- who staff can reach ---------------------------------------------------------------


def test_another_facility_s_admin_cannot_put_money_into_our_family_s_wallet(
    app, family, clock, db, settings
):
    lakeview = family.other_facility.id
    with staff_client(app, family.other_admin, clock) as theirs:
        # What the finding did: Maria's raw id, at Lakeview's own endpoint.
        raw = theirs.post(
            f"/api/v1/facilities/{lakeview}/wallet-deposits",
            json={"visitor_id": family.visitor.id, "amount_cents": 500_00, "method": "cash"},
        )
        assert raw.status_code in (404, 422), raw.text
    assert transaction_count(db) == 0
    with staff_client(app, family.scheduler, clock) as ours:
        riverside_ref = maria_ref(ours, family)
    clock.advance(seconds=30)  # a code works once: Lakeview's admin signs in with the next
    with staff_client(app, family.other_admin, clock) as theirs:
        for reference in (
            str(family.visitor.id),
            riverside_ref,  # a reference Riverside's search gave
            visitor_reference(settings.secret_key, lakeview, family.visitor.id),  # well signed
            visitor_reference("another key", lakeview, family.visitor.id),
        ):
            r = deposit(theirs, lakeview, reference, 500_00)
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == "visitor_not_found"
        assert search(theirs, lakeview, "maria").json() == []
        assert search(theirs, lakeview, "maria@example.com").json() == []
        # Riverside's own endpoint is Riverside's: Lakeview's admin gets "not found" there.
        assert deposit(theirs, family.facility.id, riverside_ref).status_code == 404
        assert search(theirs, family.facility.id, "maria").status_code == 404
    assert transaction_count(db) == 0
    assert entry_total(db) == 0
    assert audited(db) == []


def test_a_visitor_with_no_live_request_here_is_not_found(app, family, clock, db, settings):
    stranger = family.make_visitor("sam.stranger@example.com", name="Sam Stranger")
    turned_down = family.make_visitor("dee.denied@example.com", name="Dee Denied")
    db.add(
        Approval(
            facility_id=family.facility.id,
            visitor_id=turned_down.id,
            resident_id=family.resident.id,
            relationship="friend",
            status=ApprovalStatus.DENIED,
            requested_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        )
    )
    family.commit()
    fid = family.facility.id
    with staff_client(app, family.scheduler, clock) as c:
        assert search(c, fid, "stranger").json() == []
        assert search(c, fid, "denied").json() == []
        for visitor in (stranger, turned_down):
            r = deposit(c, fid, visitor_reference(settings.secret_key, fid, visitor.id))
            assert r.status_code == 404, r.text
    assert transaction_count(db) == 0
    assert audited(db) == []


def test_the_search_needs_two_letters_and_treats_wildcards_as_letters(app, family, clock):
    fid = family.facility.id
    with staff_client(app, family.scheduler, clock) as c:
        short = search(c, fid, "m")
        assert short.status_code == 422
        assert short.json()["error"]["fields"]["q"].startswith("Enter at least 2 letters")
        assert search(c, fid, "%%").json() == []
        assert search(c, fid, "__").json() == []
        assert [v["name"] for v in search(c, fid, "MARIA").json()] == ["Maria Lopez"]


def test_an_officer_may_not_record_deposits(app, family, clock, db, settings):
    fid = family.facility.id
    with staff_client(app, family.officer, clock) as c:
        assert search(c, fid, "maria").status_code == 403
        ref = visitor_reference(settings.secret_key, fid, family.visitor.id)
        assert deposit(c, fid, ref).status_code == 403
        assert c.get(f"/staff/facilities/{fid}/lobby-deposits").status_code == 403
    assert transaction_count(db) == 0


# --- what a deposit answers and leaves behind ------------------------------------------


def test_the_reply_and_the_receipt_never_show_the_wallet_s_balance(app, family, clock, db):
    fund(db, family.visitor.id, 123_45, key="maria-earlier")
    family.commit()
    fid = family.facility.id
    with staff_client(app, family.scheduler, clock) as c:
        r = deposit(c, fid, maria_ref(c, family), 20_00, idempotency_key="lobby-till-0001")
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["amount_cents"], body["amount"], body["method"]) == (20_00, "$20.00", "cash")
        assert body["visitor_name"] == "Maria Lopez"
        assert body["recorded_by"] == family.scheduler.member.email
        assert "cash at Riverside Jail" in body["description"]
        assert not [k for k in body if "balance" in k or "wallet" in k or "available" in k]
        assert "143.45" not in r.text and "14345" not in r.text and "12345" not in r.text
        again = c.get(f"/api/v1/facilities/{fid}/wallet-deposits/{body['transaction_id']}")
        assert again.json() == body
        receipt = c.get(f"/staff/facilities/{fid}/lobby-deposits/{body['transaction_id']}")
        assert receipt.status_code == 200
        assert "Deposit recorded" in receipt.text and "$20.00" in receipt.text
        assert "$143.45" not in receipt.text and "$123.45" not in receipt.text
        # A retry of the same deposit records nothing more and answers the same receipt.
        replay = deposit(c, fid, maria_ref(c, family), 20_00, idempotency_key="lobby-till-0001")
        assert replay.status_code == 201 and replay.json() == body
    assert billing.wallet_summary(db, family.visitor.id).available_cents == 143_45
    assert len(audited(db)) == 1


def test_every_deposit_is_audited_with_who_where_whom_and_how_much(app, family, clock, db):
    fid = family.facility.id
    with staff_client(app, family.scheduler, clock) as c:
        ref = maria_ref(c, family)
        assert deposit(c, fid, ref, 25_00).status_code == 201
        r = deposit(c, fid, ref, 10_00, method="money_order", reference="MO-1234")
        assert r.status_code == 201
    events = sorted(audited(db), key=lambda e: e.id)
    assert [(e.actor_type, e.actor_id) for e in events] == [
        ("staff", family.scheduler.member.id)
    ] * 2
    assert {e.facility_id for e in events} == {fid}
    assert {(e.subject_type, e.subject_id) for e in events} == {("visitor", family.visitor.id)}
    assert [(e.data["amount_cents"], e.data["method"]) for e in events] == [
        (25_00, "cash"),
        (10_00, "money_order"),
    ]
    assert events[1].data["reference"] == "MO-1234"
    assert events[1].data["transaction_id"] == r.json()["transaction_id"]


def test_a_day_s_deposits_are_capped_and_one_over_the_cap_writes_nothing(app, family, clock, db):
    fid = family.facility.id
    with staff_client(app, family.admin, clock) as admin:
        shown = admin.get(f"/api/v1/facilities/{fid}/settings").json()
        assert shown["lobby_deposit_daily_cap_cents"] == 2_500_00  # the default
        changed = admin.put(
            f"/api/v1/facilities/{fid}/settings",
            json={**shown, "lobby_deposit_daily_cap_cents": 100_00},
        )
        assert changed.status_code == 200, changed.text
        # 23:00 in New York is already tomorrow in UTC: it is still today's deposits.
        clock.set(dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.UTC))
        ref = maria_ref(admin, family)
        assert deposit(admin, fid, ref, 60_00).status_code == 201
        before = (transaction_count(db), entry_total(db), len(audited(db)))
        over = deposit(admin, fid, ref, 50_00)
        assert over.status_code == 409, over.text
        error = over.json()["error"]
        assert error["code"] == "lobby_deposit_cap_reached"
        assert "at most $100.00 of lobby deposits a day" in error["message"]
        assert "Up to $40.00 more can be recorded today" in error["message"]
        assert (transaction_count(db), entry_total(db), len(audited(db))) == before
        assert deposit(admin, fid, ref, 40_00).status_code == 201  # exactly the cap
        assert deposit(admin, fid, ref, 1).status_code == 409
    clock.set(dt.datetime(2026, 11, 27, 5, 0, tzinfo=dt.UTC))  # midnight in New York
    with staff_client(app, family.admin, clock) as admin:
        assert deposit(admin, fid, ref, 100_00).status_code == 201
    wallet = ledger.find_account(db, AccountKind.VISITOR_WALLET, family.visitor.id)
    assert ledger.balance(db, wallet.id) == 200_00


def test_the_cap_is_set_on_the_settings_page_in_dollars(app, family, clock, db):
    fid = family.facility.id
    with staff_client(app, family.admin, clock) as admin:
        page = admin.get(f"/staff/facilities/{fid}/settings")
        assert 'name="lobby_deposit_daily_cap" type="text"' in page.text
        assert 'value="2500"' in page.text
        assert "Accept identity checks made by other facilities" in page.text
        form = _settings_form(db, fid)
        form.update(lobby_deposit_daily_cap="750", csrf_token=admin.cookies["ov_csrf"])
        saved = admin.post(f"/staff/facilities/{fid}/settings", data=form, follow_redirects=True)
        assert "Settings saved" in saved.text
        form.update(lobby_deposit_daily_cap="lots")
        refused = admin.post(f"/staff/facilities/{fid}/settings", data=form)
        assert refused.status_code == 422
        assert "Enter a whole number of dollars" in refused.text
    row = db.get(FacilitySettings, fid)
    db.refresh(row)
    assert row.lobby_deposit_daily_cap_cents == 750_00


def _settings_form(db, facility_id: int) -> dict[str, str]:
    row = db.get(FacilitySettings, facility_id)
    form = {
        name: str(getattr(row, name))
        for name in (
            "slot_step_minutes",
            "min_notice_minutes",
            "booking_horizon_days",
            "weekly_remote_visits",
            "weekly_onsite_visits",
            "weekly_privileged_visits",
            "visitors_per_visit",
            "approved_visitors_per_resident",
            "join_window_minutes",
            "reconnect_grace_seconds",
            "recording_retention_days",
            "free_minutes_per_week",
            "remote_rate_cents_per_minute",
        )
    }
    form["visit_lengths_minutes"] = ", ".join(str(n) for n in row.visit_lengths_minutes)
    form["onsite_visits_free"] = "yes"
    return form


# --- the staff page --------------------------------------------------------------------


def test_staff_find_the_family_record_cash_and_read_a_receipt_on_the_page(app, family, clock, db):
    fund(db, family.visitor.id, 55_55, key="maria-before")
    family.commit()
    fid = family.facility.id
    with staff_client(app, family.scheduler, clock) as c:
        start = c.get(f"/staff/facilities/{fid}")
        assert f'href="/staff/facilities/{fid}/lobby-deposits"' in start.text
        found = c.get(f"/staff/facilities/{fid}/lobby-deposits", params={"q": "maria"})
        assert found.status_code == 200
        assert "Maria Lopez" in found.text and "maria@example.com" in found.text
        link = found.text.split(f'href="/staff/facilities/{fid}/lobby-deposits/new?visitor=')[1]
        form_url = f"/staff/facilities/{fid}/lobby-deposits/new?visitor=" + link.split('"')[0]
        form = c.get(form_url.replace("&amp;", "&"))
        assert form.status_code == 200, form.text
        assert "Record a deposit" in form.text and "$55.55" not in form.text
        hidden = form.text.split('name="visitor" value="')[1].split('"')[0]
        attempt = form.text.split('name="attempt" value="')[1].split('"')[0]
        typed = {
            "visitor": hidden,
            "attempt": attempt,
            "method": "cash",
            "amount": "lots",
            "csrf_token": c.cookies["ov_csrf"],
        }
        bad = c.post(f"/staff/facilities/{fid}/lobby-deposits", data=typed)
        assert bad.status_code == 422 and "Error:" in bad.text
        assert 'value="lots"' in bad.text
        typed["amount"] = "20"
        done = c.post(f"/staff/facilities/{fid}/lobby-deposits", data=typed, follow_redirects=True)
        assert done.status_code == 200
        assert "$20.00 recorded for Maria Lopez" in done.text
        assert "Deposit recorded" in done.text and "Receipt L-" in done.text
        assert "$75.55" not in done.text and "$55.55" not in done.text
        # The same form sent twice (a double click) records it once.
        c.post(f"/staff/facilities/{fid}/lobby-deposits", data=typed)
    assert len(audited(db)) == 1
    assert billing.wallet_summary(db, family.visitor.id).available_cents == 75_55


def test_the_page_refuses_over_the_cap_and_another_facility_s_family(
    app, family, clock, db, settings
):
    set_cap(db, family.facility.id, 10_00)
    fid = family.facility.id
    ref = visitor_reference(settings.secret_key, fid, family.visitor.id)
    with staff_client(app, family.scheduler, clock) as c:
        typed = {"visitor": ref, "method": "cash", "amount": "12.50"}
        over = c.post(
            f"/staff/facilities/{fid}/lobby-deposits",
            data={**typed, "csrf_token": c.cookies["ov_csrf"]},
        )
        assert over.status_code == 409
        assert "at most $10.00 of lobby deposits a day" in over.text
        assert 'value="12.50"' in over.text
    lakeview = family.other_facility.id
    with staff_client(app, family.other_admin, clock) as theirs:
        page = theirs.get(f"/staff/facilities/{lakeview}/lobby-deposits", params={"q": "maria"})
        assert "Maria Lopez" not in page.text and "No family of Lakeview Prison" in page.text
        form = theirs.get(
            f"/staff/facilities/{lakeview}/lobby-deposits/new",
            params={"visitor": ref},
            follow_redirects=False,
        )
        assert form.status_code == 303
        shown = theirs.get(form.headers["location"])
        assert "Maria Lopez" not in shown.text
        assert "find that visitor among this facility" in shown.text
        sent = theirs.post(
            f"/staff/facilities/{lakeview}/lobby-deposits",
            data={**typed, "amount": "5", "csrf_token": theirs.cookies["ov_csrf"]},
            follow_redirects=False,
        )
        assert sent.status_code == 303
    assert transaction_count(db) == 0
    assert audited(db) == []


# --- what the finding showed downstream ------------------------------------------------


def test_another_facility_s_refunds_list_does_not_show_a_family_it_once_paid_money_to(
    app, client, family, clock, db
):
    """Before the fix, Lakeview's deposit made Maria one of "its" families, so its refunds
    list showed her name and e-mail address. Money moved is no link; a request is."""
    lakeview = family.other_facility.id
    received = ledger.account(db, clock, AccountKind.PAYMENTS_RECEIVED)
    ledger.post(  # what the unscoped lobby deposit wrote
        db,
        clock,
        f"lobby:{lakeview}:finding-0001",
        "deposit",
        [(received, -500_00), (billing.wallet(db, clock, family.visitor.id), 500_00)],
        "Added $500.00: cash at Lakeview Prison",
        facility_id=lakeview,
    )
    family.commit()
    app.state.payment_gateway = SandboxGateway()
    sign_in_visitor(client, family.visitor)
    paid = client.post("/api/v1/me/wallet/refund", json={"idempotency_key": "cash-out-0001"})
    assert paid.status_code == 201, paid.text
    with staff_client(app, family.other_admin, clock) as theirs:
        listed = theirs.get(f"/api/v1/facilities/{lakeview}/refunds").json()
        assert listed["refunds"] == []
        page = theirs.get(f"/staff/facilities/{lakeview}/refunds").text
        assert "Maria Lopez" not in page and "maria@example.com" not in page
    with staff_client(app, family.admin, clock) as ours:
        mine = ours.get(f"/api/v1/facilities/{family.facility.id}/refunds").json()
        assert [r["visitor"] for r in mine["refunds"]] == ["Maria Lopez"]


def test_deposits_per_day_are_summed_per_facility(db, family, clock):
    """Lakeview's deposits never count against Riverside's cap (and the other way)."""
    received = ledger.account(db, clock, AccountKind.PAYMENTS_RECEIVED)
    for facility, cents in ((family.facility, 30_00), (family.other_facility, 70_00)):
        ledger.post(
            db,
            clock,
            f"lobby:{facility.id}:sum-0001",
            "deposit",
            [(received, -cents), (billing.wallet(db, clock, family.visitor.id), cents)],
            facility_id=facility.id,
        )
    assert recorded_today_cents(db, family.facility, clock.now()) == 30_00
    assert recorded_today_cents(db, family.other_facility, clock.now()) == 70_00
