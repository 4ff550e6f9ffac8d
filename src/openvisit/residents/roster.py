"""Roster import: a facility's CSV of residents, applied all or nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from openvisit.audit.service import AuditActor
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, DomainError, InvalidInput
from openvisit.facilities import units
from openvisit.facilities.models import Facility
from openvisit.facilities.service import record_event
from openvisit.residents.models import CustodyStatus, Resident
from openvisit.residents.service import (
    check_booking_number,
    check_name,
    normalize_booking_number,
    parse_date_of_birth,
)

COLUMNS = ("booking_number", "first_name", "last_name", "housing_unit", "date_of_birth")
OUTCOMES = ("created", "updated", "unchanged", "rejected")
# Roster fields compared with the resident's record, by the name shown in reports.
COMPARED = {
    "first_name": "first_name",
    "last_name": "last_name",
    "housing_unit": "unit_id",
    "date_of_birth": "date_of_birth",
}


@dataclass
class RosterRow:
    line: int
    booking_number: str
    outcome: str
    reason: str = ""
    changes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "booking_number": self.booking_number,
            "outcome": self.outcome,
            "reason": self.reason,
            "changes": self.changes,
        }


@dataclass
class RosterReport:
    dry_run: bool
    applied: bool
    rows: list[RosterRow]

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for row in self.rows:
            counts[row.outcome] += 1
        return counts

    @property
    def rejected(self) -> list[RosterRow]:
        return [row for row in self.rows if row.outcome == "rejected"]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "applied": self.applied,
            "counts": self.counts,
            "rows": [row.to_json() for row in self.rows],
        }


class RosterRejected(DomainError):
    code = Code.ROSTER_REJECTED
    message = "Some rows of the roster have problems, so nothing was imported."

    def __init__(self, report: RosterReport) -> None:
        rejected = len(report.rejected)
        super().__init__(
            f"{rejected} row{'s' if rejected != 1 else ''} of the roster "
            f"{'have' if rejected != 1 else 'has'} problems, so nothing was imported. "
            "Fix them and upload the file again.",
            report=report.to_json(),
        )
        self.report = report


def read_roster(data: bytes, settings: Settings) -> list[tuple[int, dict[str, str]]]:
    """The file's rows as (line number, column -> value); refuses a file we can't read."""
    if len(data) > settings.upload_max_bytes:
        raise DomainError(
            f"The roster file is too large. The limit is "
            f"{settings.upload_max_bytes // (1024 * 1024) or 1} MB.",
            code=Code.ROSTER_TOO_LARGE,
            fields={"roster": "Choose a smaller file"},
        )
    if not data.strip():
        raise InvalidInput(
            "The roster file is empty.",
            code=Code.ROSTER_EMPTY,
            fields={"roster": "Choose a CSV file with a header and rows"},
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            "The roster must be a CSV file saved as UTF-8.",
            code=Code.ROSTER_NOT_UTF8,
            fields={"roster": "Save the file as CSV UTF-8 and try again"},
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise InvalidInput(
                "The roster's first line must name the columns. Missing: "
                + ", ".join(missing)
                + ".",
                code=Code.ROSTER_BAD_HEADER,
                fields={"roster": "Missing columns: " + ", ".join(missing)},
                missing=missing,
            )
        index = {name: header.index(name) for name in COLUMNS}
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= settings.roster_max_rows:
                raise InvalidInput(
                    f"The roster has more than {settings.roster_max_rows} rows. "
                    "Split it into smaller files.",
                    code=Code.ROSTER_TOO_MANY_ROWS,
                    fields={"roster": f"Use at most {settings.roster_max_rows} rows per file"},
                )
            rows.append(
                (
                    reader.line_num,
                    {name: cells[i].strip() if i < len(cells) else "" for name, i in index.items()},
                )
            )
    except csv.Error as exc:
        raise InvalidInput(
            f"The roster is not a valid CSV file (line {reader.line_num}): {exc}.",
            code=Code.ROSTER_NOT_CSV,
            fields={"roster": "Choose a valid CSV file"},
        ) from None
    return rows


def import_roster(
    session: Session,
    settings: Settings,
    clock: Clock,
    actor: AuditActor,
    facility: Facility,
    data: bytes,
    *,
    dry_run: bool = False,
) -> RosterReport:
    """Check every row, then apply all of them or none.

    Existing residents and units are loaded once, so a large file costs a few
    queries however many rows it has.
    """
    now = clock.now()
    today = now.astimezone(ZoneInfo(facility.timezone)).date()
    lines = read_roster(data, settings)
    unit_ids = {name.casefold(): uid for uid, name in units.unit_names(session, facility).items()}
    existing = {
        r.booking_number: r
        for r in session.scalars(select(Resident).where(Resident.facility_id == facility.id))
    }
    seen: dict[str, int] = {}
    rows = [_check_row(line, cells, unit_ids, existing, seen, today) for line, cells in lines]
    report = RosterReport(dry_run=dry_run, applied=False, rows=rows)
    if report.rejected:
        raise RosterRejected(report)
    if dry_run:
        return report
    _apply(session, facility, existing, rows, now)
    report.applied = True
    record_event(session, "roster:imported", actor, now, facility, {"counts": report.counts})
    return report


def _check_row(
    line: int,
    cells: dict[str, str],
    unit_ids: dict[str, int],
    existing: dict[str, Resident],
    seen: dict[str, int],
    today: dt.date,
) -> RosterRow:
    number = normalize_booking_number(cells["booking_number"])
    row = RosterRow(
        line=line, booking_number=number or cells["booking_number"][:40], outcome="rejected"
    )
    problems: list[str] = []
    if problem := check_booking_number(number):
        problems.append(problem)
    elif number in seen:
        problems.append(f"Booking number is also on line {seen[number]}")
    else:
        seen[number] = line
    first = " ".join(cells["first_name"].split())
    last = " ".join(cells["last_name"].split())
    for value, label in ((first, "first name"), (last, "last name")):
        if problem := check_name(value, label):
            problems.append(problem)
    unit_id = unit_ids.get(" ".join(cells["housing_unit"].split()).casefold())
    if not cells["housing_unit"]:
        problems.append("Enter a housing unit")
    elif unit_id is None:
        problems.append(f"No housing unit named {cells['housing_unit'][:80]!r} at this facility")
    born, problem = parse_date_of_birth(cells["date_of_birth"], today)
    if problem:
        problems.append(problem)
    if problems or unit_id is None:
        row.reason = "; ".join(problems)
        return row
    row.values = {"first_name": first, "last_name": last, "unit_id": unit_id, "date_of_birth": born}
    resident = existing.get(number)
    if resident is None:
        row.outcome = "created"
    else:
        row.changes = [
            shown for shown, attr in COMPARED.items() if getattr(resident, attr) != row.values[attr]
        ]
        row.outcome = "updated" if row.changes else "unchanged"
    return row


def _apply(
    session: Session,
    facility: Facility,
    existing: dict[str, Resident],
    rows: list[RosterRow],
    now: dt.datetime,
) -> None:
    new: list[dict[str, Any]] = []
    for row in rows:
        if row.outcome == "created":
            new.append(
                {
                    "facility_id": facility.id,
                    "booking_number": row.booking_number,
                    "custody_status": CustodyStatus.IN_CUSTODY,
                    "restriction_reason": "",
                    "preferred_language": "en",
                    "restricted_until": None,
                    "pin_hash": None,
                    "created_at": now,
                    "updated_at": now,
                    **row.values,
                }
            )
        elif row.outcome == "updated":
            resident = existing[row.booking_number]
            for shown in row.changes:
                attr = COMPARED[shown]
                setattr(resident, attr, row.values[attr])
            resident.updated_at = now
    session.flush()
    if new:
        # One executemany, not one INSERT per row: the new rows' ids aren't needed.
        session.execute(insert(Resident), new)
