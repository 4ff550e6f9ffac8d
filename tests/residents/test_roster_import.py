from __future__ import annotations

from sqlalchemy import event, select

from openvisit.audit.models import AuditEvent
from openvisit.residents.models import Resident
from tests.factories import sign_in_staff

HEADER = "booking_number,first_name,last_name,housing_unit,date_of_birth\n"


def _upload(client, personas, text, *, dry_run=False, raw=None):
    data = {"dry_run": "true"} if dry_run else {}
    content = raw if raw is not None else text.encode()
    return client.post(
        f"/api/v1/facilities/{personas.facility.id}/residents/import",
        files={"roster": ("roster.csv", content, "text/csv")},
        data=data,
    )


def _residents(db, personas):
    db.expire_all()
    return {
        r.booking_number: r
        for r in db.scalars(select(Resident).where(Resident.facility_id == personas.facility.id))
    }


def _ready(client, personas, clock):
    scheduler = personas.scheduler
    personas.unit  # noqa: B018
    personas.make_unit(personas.facility, "Unit B")
    personas.commit()
    sign_in_staff(client, scheduler, clock)


def test_a_clean_roster_adds_everyone_and_is_audited_once(client, personas, clock, db):
    _ready(client, personas, clock)
    text = (
        "\ufeff" + HEADER + ("C-1,Ana,Silva,Unit A,1990-01-02\nc-2 ,Ben,Okafor,unit b,1985-12-31\n")
    )
    r = _upload(client, personas, text)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["applied"] is True
    assert report["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert [row["line"] for row in report["rows"]] == [2, 3]
    residents = _residents(db, personas)
    assert set(residents) == {"C-1", "C-2"}
    assert residents["C-2"].unit_id != residents["C-1"].unit_id
    events = db.scalars(select(AuditEvent).where(AuditEvent.tag == "roster:imported")).all()
    assert len(events) == 1 and events[0].data["counts"]["created"] == 2


def test_reimporting_reports_updates_with_the_changed_fields_and_unchanged_rows(
    client, personas, clock, db
):
    _ready(client, personas, clock)
    first = HEADER + "C-1,Ana,Silva,Unit A,1990-01-02\nC-2,Ben,Okafor,Unit A,1985-12-31\n"
    assert _upload(client, personas, first).status_code == 200
    second = HEADER + "C-1,Ana,Silva,Unit A,1990-01-02\nC-2,Ben,Okafor-Ade,Unit B,1985-12-31\n"
    r = _upload(client, personas, second)
    assert r.status_code == 200
    rows = {row["booking_number"]: row for row in r.json()["rows"]}
    assert rows["C-1"]["outcome"] == "unchanged"
    assert rows["C-2"]["outcome"] == "updated"
    assert rows["C-2"]["changes"] == ["last_name", "housing_unit"]
    assert _residents(db, personas)["C-2"].last_name == "Okafor-Ade"


def test_one_broken_row_rejects_the_whole_file_and_reports_the_row(client, personas, clock, db):
    _ready(client, personas, clock)
    personas.resident  # noqa: B018
    personas.commit()
    text = HEADER + (
        "B-1001,James,Changed,Unit A,1990-01-02\n"
        "C-1,Ana,Silva,Unit A,1990-01-02\n"
        "C-2,Ben,Okafor,Unit Z,1985-12-31\n"
        "C-3,,Moss,Unit A,1991-02-30\n"
        "C-1,Ana,Again,Unit A,1990-01-02\n"
    )
    r = _upload(client, personas, text)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "roster_rejected"
    report = error["details"]["report"]
    assert report["applied"] is False
    assert report["counts"]["rejected"] == 3
    rejected = {
        row["line"]: row["reason"] for row in report["rows"] if row["outcome"] == "rejected"
    }
    assert "Unit Z" in rejected[4]
    assert "first name" in rejected[5] and "real date" in rejected[5]
    assert "line 3" in rejected[6]
    residents = _residents(db, personas)
    assert set(residents) == {"B-1001"}
    assert residents["B-1001"].last_name == "Lopez"
    assert not db.scalars(select(AuditEvent).where(AuditEvent.tag == "roster:imported")).all()


def test_a_header_missing_columns_is_refused_naming_them(client, personas, clock, db):
    _ready(client, personas, clock)
    r = _upload(client, personas, "booking_number,first_name,unit\nC-1,Ana,Unit A\n")
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "roster_bad_header"
    assert error["details"]["missing"] == ["last_name", "housing_unit", "date_of_birth"]
    assert _residents(db, personas) == {}


def test_a_file_that_is_not_utf8_or_too_large_is_refused(client, personas, clock, db, settings):
    _ready(client, personas, clock)
    latin1 = (HEADER + "C-1,José,Núñez,Unit A,1990-01-02\n").encode("latin-1")
    r = _upload(client, personas, "", raw=latin1)
    assert r.status_code == 422 and r.json()["error"]["code"] == "roster_not_utf8"
    settings.upload_max_bytes = 100
    big = _upload(client, personas, HEADER + "C-1,Ana,Silva,Unit A,1990-01-02\n" * 5)
    assert big.status_code == 413 and big.json()["error"]["code"] == "roster_too_large"
    settings.upload_max_bytes = 5 * 1024 * 1024
    settings.roster_max_rows = 2
    many = _upload(
        client, personas, HEADER + "".join(f"C-{i},Ana,Silva,Unit A,1990-01-02\n" for i in range(3))
    )
    assert many.status_code == 422 and many.json()["error"]["code"] == "roster_too_many_rows"
    assert _residents(db, personas) == {}


def test_a_dry_run_reports_without_changing_anything(client, personas, clock, db):
    _ready(client, personas, clock)
    r = _upload(client, personas, HEADER + "C-1,Ana,Silva,Unit A,1990-01-02\n", dry_run=True)
    assert r.status_code == 200
    assert r.json()["dry_run"] is True and r.json()["applied"] is False
    assert r.json()["counts"]["created"] == 1
    assert _residents(db, personas) == {}


def test_a_2000_row_roster_imports_quickly_and_reimports_as_unchanged(client, personas, clock, db):
    _ready(client, personas, clock)
    text = HEADER + "".join(
        f"R-{i:05d},First{i},Last{i},{'Unit A' if i % 2 else 'Unit B'},1980-01-{1 + i % 28:02d}\n"
        for i in range(2000)
    )
    statements = []
    connection = db.connection()

    def note(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", note)
    r = _upload(client, personas, text)
    event.remove(connection, "before_cursor_execute", note)
    resident_selects = [
        s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM residents" in s
    ]
    assert r.status_code == 200, r.text[:500]
    assert r.json()["counts"]["created"] == 2000
    assert len(_residents(db, personas)) == 2000
    again = _upload(client, personas, text)
    assert again.json()["counts"] == {"created": 0, "updated": 0, "unchanged": 2000, "rejected": 0}
    # Existing residents are loaded once, not looked up row by row; inserts are batched.
    assert len(resident_selects) <= 2, len(resident_selects)
    assert len(statements) < 100


def test_a_roster_cannot_be_imported_into_another_facility(client, personas, clock, db):
    _ready(client, personas, clock)
    r = client.post(
        f"/api/v1/facilities/{personas.other_facility.id}/residents/import",
        files={"roster": ("r.csv", (HEADER + "C-1,A,B,Block 1,1990-01-02\n").encode(), "text/csv")},
    )
    assert r.status_code == 404
    assert db.scalars(select(Resident)).all() == []
