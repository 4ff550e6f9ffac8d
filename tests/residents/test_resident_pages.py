from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from openvisit.residents.models import Resident
from tests.factories import sign_in_staff

HEADER = "booking_number,first_name,last_name,housing_unit,date_of_birth\n"


def _pages(personas, rest=""):
    return f"/staff/facilities/{personas.facility.id}/residents{rest}"


def _form_client(client, personas, clock, persona):
    personas.commit()
    sign_in_staff(client, persona, clock)
    del client.headers["X-CSRF-Token"]
    return client.cookies.get("ov_csrf")


def test_an_empty_facility_says_how_to_add_residents(client, personas, clock):
    token = _form_client(client, personas, clock, personas.scheduler)
    assert token
    page = client.get(_pages(personas))
    assert "No residents yet. Add one or import a roster." in page.text


def test_adding_a_resident_on_the_page_shows_errors_then_the_detail(client, personas, clock, db):
    personas.unit  # noqa: B018
    token = _form_client(client, personas, clock, personas.scheduler)
    form = {
        "csrf_token": token,
        "booking_number": "",
        "first_name": "Rosa",
        "last_name": "Diaz",
        "date_of_birth": "1988-02-30",
        "unit_id": str(personas.unit.id),
        "preferred_language": "en",
    }
    bad = client.post(_pages(personas, "/new"), data=form)
    assert bad.status_code == 422
    assert "<title>Error:" in bad.text
    assert "Enter a booking number" in bad.text and "must be a real date" in bad.text
    assert 'value="Rosa"' in bad.text
    assert db.scalars(select(Resident)).all() == []
    ok = client.post(
        _pages(personas, "/new"),
        data={**form, "booking_number": "b-77", "date_of_birth": "1988-02-03"},
    )
    assert ok.status_code == 200
    assert "Rosa Diaz (B-77) was added" in ok.text
    assert "3 February 1988" in ok.text and "Unit A" in ok.text
    listed = client.get(_pages(personas, "?q=rosa"))
    assert "B-77" in listed.text


def test_editing_on_the_page_saves_and_says_so(client, personas, clock, db):
    resident = personas.resident
    token = _form_client(client, personas, clock, personas.scheduler)
    edit = client.get(_pages(personas, f"/{resident.id}/edit"))
    assert 'value="B-1001"' in edit.text and 'value="1990-01-02"' in edit.text
    r = client.post(
        _pages(personas, f"/{resident.id}/edit"),
        data={
            "csrf_token": token,
            "booking_number": "B-1001",
            "first_name": "Jim",
            "last_name": "Lopez",
            "date_of_birth": "1990-01-02",
            "unit_id": str(personas.unit.id),
            "preferred_language": "en",
        },
    )
    assert "details were saved" in r.text and "Jim Lopez" in r.text


def test_a_restriction_set_on_the_page_ends_at_the_end_of_the_local_day(
    client, personas, clock, db
):
    resident = personas.resident
    token = _form_client(client, personas, clock, personas.scheduler)
    r = client.post(
        _pages(personas, f"/{resident.id}/restriction"),
        data={"csrf_token": token, "until": "2026-12-05", "reason": "Contraband"},
    )
    assert r.status_code == 200 and "Restricted" in r.text
    db.expire_all()
    # Midnight at the end of 5 December in New York is 05:00 UTC on the 6th.
    assert db.get(Resident, resident.id).restricted_until == dt.datetime(
        2026, 12, 6, 5, 0, tzinfo=dt.UTC
    )
    past = client.post(
        _pages(personas, f"/{resident.id}/restriction"),
        data={"csrf_token": token, "until": "2026-11-01", "reason": "x"},
    )
    assert past.status_code == 422 and "Choose a day in the future" in past.text
    lifted = client.post(
        _pages(personas, f"/{resident.id}/restriction/lift"), data={"csrf_token": token}
    )
    assert "was lifted" in lifted.text


def test_the_pin_form_refuses_letters_and_accepts_digits(client, personas, clock):
    resident = personas.resident
    token = _form_client(client, personas, clock, personas.scheduler)
    bad = client.post(
        _pages(personas, f"/{resident.id}/pin"), data={"csrf_token": token, "pin": "12ab"}
    )
    assert bad.status_code == 422 and "The PIN must be 6 to 12 digits." in bad.text
    weak = client.post(
        _pages(personas, f"/{resident.id}/pin"), data={"csrf_token": token, "pin": "654321"}
    )
    assert weak.status_code == 422
    assert "The PIN can&#39;t be digits in order, like 123456 or 654321." in weak.text
    ok = client.post(
        _pages(personas, f"/{resident.id}/pin"), data={"csrf_token": token, "pin": "730518"}
    )
    assert "A new PIN was set" in ok.text and "730518" not in ok.text


def test_an_officer_sees_the_detail_without_the_change_forms(client, personas, clock):
    resident = personas.resident
    _form_client(client, personas, clock, personas.officer)
    page = client.get(_pages(personas, f"/{resident.id}"))
    assert page.status_code == 200 and "B-1001" in page.text
    assert "Set PIN" not in page.text
    assert client.get(_pages(personas, "/new")).status_code == 403


def test_another_facilitys_resident_page_is_not_found(client, personas, clock):
    other = personas.other_resident
    _form_client(client, personas, clock, personas.scheduler)
    assert client.get(_pages(personas, f"/{other.id}")).status_code == 404


def test_the_import_page_reports_rejected_rows_and_then_imports(client, personas, clock, db):
    personas.unit  # noqa: B018
    token = _form_client(client, personas, clock, personas.scheduler)
    assert "booking_number,first_name" in client.get(_pages(personas, "/import")).text
    broken = HEADER + "C-1,Ana,Silva,Unit A,1990-01-02\nC-2,Ben,Okafor,Nowhere,1985-12-31\n"
    r = client.post(
        _pages(personas, "/import"),
        data={"csrf_token": token},
        files={"roster": ("r.csv", broken.encode(), "text/csv")},
    )
    assert r.status_code == 422
    assert "Roster not imported" in r.text and "Nowhere" in r.text
    assert db.scalars(select(Resident)).all() == []
    clean = HEADER + "C-1,Ana,Silva,Unit A,1990-01-02\n"
    ok = client.post(
        _pages(personas, "/import"),
        data={"csrf_token": token},
        files={"roster": ("r.csv", clean.encode(), "text/csv")},
    )
    assert ok.status_code == 200 and "Roster imported" in ok.text
    assert "1 added" in ok.text


def test_the_import_page_without_a_file_asks_for_one(client, personas, clock):
    token = _form_client(client, personas, clock, personas.scheduler)
    r = client.post(
        _pages(personas, "/import"),
        data={"csrf_token": token},
        files={"roster": ("r.csv", b"", "text/csv")},
    )
    assert r.status_code == 422 and "Choose a CSV file with a header and rows" in r.text
