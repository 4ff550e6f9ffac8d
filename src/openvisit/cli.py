"""`openvisit serve | demo | db upgrade | create-staff | audit verify | ledger check`."""

from __future__ import annotations

import argparse
import copy
import getpass
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import uvicorn
import uvicorn.config
from sqlalchemy.orm import Session

from openvisit.app import create_app
from openvisit.audit.service import verify_chain
from openvisit.billing.ledger import check_invariants
from openvisit.clock import SystemClock
from openvisit.config import Settings
from openvisit.db import make_engine, make_sessionmaker, transaction
from openvisit.dbadmin import upgrade
from openvisit.demo import seed_demo
from openvisit.errors import DomainError
from openvisit.people import staff_service


def _settings() -> Settings:
    return Settings()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings()
    upgrade(settings.database_url)
    print(f"database is up to date ({_redact(settings.database_url)})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    upgrade(settings.database_url)
    app = create_app(settings, start_worker=True)
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        proxy_headers=False,
        log_level="info",
        log_config=access_log_config(),
    )
    return 0


def access_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with secret query parameters (``token``, ``code``...)
    redacted from the access log and from its error log before anything is written."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact_secrets": {"()": "openvisit.redaction.RedactSecrets"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_secrets"]
    return config


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings()
    upgrade(settings.database_url)
    print(seed_demo(settings))
    return 0


def cmd_create_staff(args: argparse.Namespace) -> int:
    settings = _settings()
    password = args.password or getpass.getpass("Password for the new staff member: ")
    factory = make_sessionmaker(make_engine(settings.database_url))

    with transaction(factory) as session:
        created = staff_service.create_staff_from_cli(
            session,
            SystemClock(),
            email=args.email,
            name=args.name,
            password=password,
            role=args.role,
            facility_name=args.facility,
        )
    print(f"created {created.member.email} ({args.role})")
    print(f"TOTP secret (add it to an authenticator app): {created.member.totp_secret}")
    print(f"otpauth URI: {created.otpauth_uri}")
    return 0


T = TypeVar("T")


class _CheckReport(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def problems(self) -> Sequence[str]: ...


def _read_only(check: Callable[[Session], T]) -> T:
    settings = _settings()
    factory = make_sessionmaker(make_engine(settings.database_url))
    with factory() as session:
        return check(session)


def _print_check(report: _CheckReport, *, sound: str, broken: str) -> int:
    """Print what a check found: one line when sound (exit 0), else every problem (exit 1)."""
    if report.ok:
        print(sound)
        return 0
    print(broken)
    for problem in report.problems:
        print(f"  - {problem}")
    return 1


def cmd_audit_verify(args: argparse.Namespace) -> int:
    report = _read_only(verify_chain)
    return _print_check(
        report,
        sound=f"audit log intact: {report.checked} events, head {report.head}",
        broken=f"audit log TAMPERED: {len(report.problems)} problem(s) in {report.checked} events",
    )


def cmd_ledger_check(args: argparse.Namespace) -> int:
    report = _read_only(check_invariants)
    return _print_check(
        report,
        sound="ledger sound: entries sum to zero, no wallet or hold below zero, settled holds zero",
        broken=f"ledger BROKEN: {len(report.problems)} problem(s) (at most 20 of each kind shown)",
    )


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="openvisit")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="upgrade the database, then serve the app")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="seed a demo facility and print its logins")
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db_upgrade)

    staff = sub.add_parser("create-staff", help="create a staff account")
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", required=True)
    staff.add_argument(
        "--role",
        required=True,
        choices=["officer", "scheduler", "investigator", "facility_admin", "provider_admin"],
    )
    staff.add_argument("--facility", help="facility name (not for provider_admin)")
    staff.add_argument("--password", help="omit to be asked")
    staff.set_defaults(func=cmd_create_staff)

    audit = sub.add_parser("audit", help="audit log commands")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain").set_defaults(func=cmd_audit_verify)

    ledger = sub.add_parser("ledger", help="money commands")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    ledger_sub.add_parser("check", help="check the ledger's invariants").set_defaults(
        func=cmd_ledger_check
    )

    args = parser.parse_args(argv)
    try:
        sys.exit(args.func(args))
    except Exception as exc:
        if isinstance(exc, DomainError):
            print(f"error: {exc.message}", file=sys.stderr)
            sys.exit(2)
        raise
