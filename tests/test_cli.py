"""The command line: demo, create-staff and db upgrade, as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys


def run(tmp_path, *args):
    env = {
        **os.environ,
        "OPENVISIT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "OPENVISIT_VAR_DIR": str(tmp_path),
        "OPENVISIT_STAFF_TOTP_REQUIRED": "false",
    }
    env.pop("OPENVISIT_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "openvisit", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_create_staff_prints_the_second_factor_and_refuses_bad_input(tmp_path):
    assert run(tmp_path, "db", "upgrade").returncode == 0
    assert run(tmp_path, "demo").returncode == 0
    assert (tmp_path / "secret_key").exists()  # generated for development, kept under var/
    facility = "Riverside County Jail (demo)"
    ok = run(
        tmp_path,
        "create-staff",
        "--email",
        "night@demo.example",
        "--name",
        "Night Shift",
        "--role",
        "officer",
        "--facility",
        facility,
        "--password",
        "a long enough password",
    )
    assert ok.returncode == 0, ok.stderr
    assert "created night@demo.example (officer)" in ok.stdout
    assert "otpauth://totp/" in ok.stdout
    again = run(
        tmp_path,
        "create-staff",
        "--email",
        "night@demo.example",
        "--name",
        "Night",
        "--role",
        "officer",
        "--facility",
        facility,
        "--password",
        "a long enough password",
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    nowhere = run(
        tmp_path,
        "create-staff",
        "--email",
        "x@demo.example",
        "--name",
        "X",
        "--role",
        "officer",
        "--facility",
        "Atlantis",
        "--password",
        "a long enough password",
    )
    assert nowhere.returncode == 2 and "No facility is named 'Atlantis'" in nowhere.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env_run = run(tmp_path, "db", "upgrade")
    assert env_run.returncode == 0
    r = subprocess.run(
        [sys.executable, "-m", "openvisit", "demo"],
        env={
            **os.environ,
            "OPENVISIT_ENV": "production",
            "OPENVISIT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert r.returncode != 0
    assert "OPENVISIT_SECRET_KEY is required in production" in r.stderr


def test_ledger_check_reports_a_sound_ledger(tmp_path):
    assert run(tmp_path, "demo").returncode == 0
    r = run(tmp_path, "ledger", "check")
    assert r.returncode == 0, r.stderr
    assert "ledger sound" in r.stdout
