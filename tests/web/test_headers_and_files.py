"""Headers and files (issue 10, item 11): a Content-Security-Policy that no page needs
to break, HSTS in production, no-store on personal pages, private files on disk,
production refusing weak settings, and a CSRF token bound to its session."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

import openvisit
from openvisit.app import create_app
from openvisit.config import Settings
from openvisit.db import make_engine
from openvisit.dbadmin import upgrade
from openvisit.media.forwarding import EncodedFrame, is_vp8_keyframe
from openvisit.media.recorder import RemuxRecorder
from openvisit.web.render import TEMPLATES_DIR
from tests.factories import PASSWORD, sign_in_staff, sign_in_visitor
from tests.people.helpers import image_bytes
from tests.support.synthetic import Clip, make_clip

LONG_KEY = "a-production-secret-key-of-48-characters-0123456"


class _InlineScripts(HTMLParser):
    """Collects what a Content-Security-Policy without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and (value or "").lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}={value}>")
            if name == "style":
                self.found.append(f"<{tag} style=...>")
        if tag == "style":
            self.found.append("<style>")
        self._in_script = (
            tag == "script" and "src" not in names and names.get("type") != "application/json"
        )

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"<script>{data.strip()[:60]}</script>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def inline_scripts(html: str) -> list[str]:
    parser = _InlineScripts()
    parser.feed(html)
    return parser.found


# --- Content-Security-Policy ------------------------------------------------------------


def test_no_template_has_an_inline_script_or_an_event_handler():
    found = {}
    for template in sorted(TEMPLATES_DIR.rglob("*.html")):
        text = template.read_text()
        problems = inline_scripts(text)
        problems += re.findall(r"\son[a-z]+\s*=", text)
        if problems:
            found[str(template.relative_to(TEMPLATES_DIR))] = problems
    assert found == {}


def test_pages_forbid_inline_script_and_have_none(client, personas, clock):
    personas.admin  # noqa: B018
    personas.commit()
    pages = [
        client.get("/"),
        client.get("/sign-in"),
        client.get("/sign-up"),
        client.post("/sign-up", data={"csrf_token": client.cookies["ov_csrf"]}),  # errors
        client.get("/no-such-page"),
        client.get("/docs"),
    ]
    for page in pages:
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert inline_scripts(page.text) == [], (page.url, inline_scripts(page.text))
    assert 'id="error-summary"' in pages[3].text  # the page that used an inline script
    assert "Page not found" in pages[4].text


# --- HSTS, caching ----------------------------------------------------------------------


def _production(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "var_dir": tmp_path / "var",
        "database_url": "sqlite://",
        "secret_key": LONG_KEY,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def test_hsts_is_sent_in_production_only(tmp_path, db, clock, client):
    app = create_app(_production(tmp_path), clock=clock, sessionmaker=db.info["factory"])
    with TestClient(app, base_url="https://testserver") as production:
        hsts = production.get("/").headers["strict-transport-security"]
    assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 31536000
    assert "strict-transport-security" not in client.get("/").headers  # env=test


def test_staff_and_personal_pages_are_never_stored_by_a_browser_or_proxy(
    client, other_client, personas, clock, app
):
    personas.visitor, personas.admin, personas.kiosk  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    family = ["/account", "/wallet", "/visits", "/account/security", "/api/v1/me"]
    sign_in_staff(other_client, personas.admin, clock)
    fid = personas.facility.id
    staff = ["/staff", f"/staff/facilities/{fid}/residents", f"/api/v1/facilities/{fid}/kiosks"]
    answers = [client.get(p) for p in family] + [other_client.get(p) for p in staff]
    with TestClient(app, base_url="https://testserver") as kiosk:
        answers.append(kiosk.get("/kiosk"))
    for r in answers:
        assert r.status_code == 200, (r.url, r.status_code)
        assert r.headers["cache-control"] == "no-store", r.url
    # Files that are the same for everyone may still be cached.
    assert "no-store" not in client.get("/static/css/app.css").headers.get("cache-control", "")


# --- production settings ----------------------------------------------------------------


def test_production_refuses_a_short_secret_key_and_insecure_cookies(tmp_path):
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        _production(tmp_path, secret_key="x" * 31)
    with pytest.raises(ValidationError, match="OPENVISIT_COOKIE_SECURE may not be false"):
        _production(tmp_path, cookie_secure=False)
    assert _production(tmp_path).secret_key == LONG_KEY
    # Development may still run on plain HTTP with a short key.
    Settings(env="development", var_dir=tmp_path, secret_key="short", cookie_secure=False)


def test_openvisit_will_not_start_in_production_with_a_short_key(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "openvisit", "db", "upgrade"],
        env={
            **os.environ,
            "PYTHONPATH": str(Path(openvisit.__file__).parents[1]),  # the code under test
            "OPENVISIT_ENV": "production",
            "OPENVISIT_VAR_DIR": str(tmp_path / "var"),
            "OPENVISIT_SECRET_KEY": "too-short",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert r.returncode != 0
    assert "OPENVISIT_SECRET_KEY must be at least 32 bytes in production" in r.stderr
    assert not (tmp_path / "var" / "openvisit.db").exists()  # nothing was done


# --- private files ----------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_database_is_0600_inside_a_0700_directory(tmp_path):
    old = os.umask(0o022)  # the usual umask: files 0644, directories 0755
    try:
        path = tmp_path / "var" / "data" / "openvisit.db"
        upgrade(f"sqlite:///{path}")
        engine = make_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM facilities")
            wal = path.with_name(path.name + "-wal")
            assert wal.exists()
            assert _mode(wal) == 0o600
        engine.dispose()
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700


def test_a_recording_is_0600_inside_0700_directories(tmp_path):
    clip = Clip.load(make_clip(tmp_path / "clip.webm", seconds=1.0))
    old = os.umask(0o022)
    try:
        path = tmp_path / "var" / "private" / "recordings" / "visit-1-visitor.webm"
        recorder = RemuxRecorder(path, "visitor")
        for data, at in clip.packets["video"]:
            frame = EncodedFrame(data, round(at * 90000), 90000, is_vp8_keyframe(data))
            recorder.write(1, "video", frame, 100.0 + at)
        assert recorder.close() is not None
    finally:
        os.umask(old)
    assert path.stat().st_size > 0
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700


def test_identity_uploads_are_0600_inside_0700_directories(client, db, personas, settings):
    sam = personas.new_visitor
    personas.commit()
    old = os.umask(0o022)
    try:
        sign_in_visitor(client, sam, PASSWORD)
        r = client.post(
            "/api/v1/me/identity",
            data={"facility_id": str(personas.facility.id)},
            files={
                "photo_id": ("id.png", image_bytes("PNG"), "image/png"),
                "selfie": ("me.jpg", image_bytes("JPEG"), "image/jpeg"),
            },
        )
    finally:
        os.umask(old)
    assert r.status_code in (200, 201), r.text
    stored = list(settings.upload_dir.iterdir())
    assert len(stored) == 2 and {_mode(f) for f in stored} == {0o600}
    assert _mode(settings.upload_dir) == 0o700 and _mode(settings.upload_dir.parent) == 0o700


# --- CSRF bound to the session ----------------------------------------------------------


def _plant(client, token: str) -> None:  # type: ignore[no-untyped-def]
    """Put ``token`` in the browser's ov_csrf cookie (as a sibling domain could)."""
    client.cookies.delete("ov_csrf")
    client.cookies.set("ov_csrf", token)


def test_a_csrf_token_from_one_session_does_not_work_in_another(client, other_client, personas, db):
    ana = personas.visitor
    bo = personas.make_visitor("bo@example.com", name="Bo Diaz")
    personas.commit()
    ana_token = sign_in_visitor(client, ana)
    bo_token = sign_in_visitor(other_client, bo)
    assert client.get("/api/v1/me").status_code == 200

    # Bo plants his own (valid for him) token as Ana's ov_csrf cookie and in a form:
    # a plain double-submit check would take the pair.
    _plant(client, bo_token)
    planted = client.post(
        "/account/resend-verification", data={"csrf_token": bo_token}, follow_redirects=False
    )
    assert planted.status_code == 403 and "This page has expired" in planted.text
    api = client.post("/api/v1/me/totp", headers={"X-CSRF-Token": bo_token})
    assert api.status_code == 403 and api.json()["error"]["code"] == "csrf_failed"

    # Ana's own token still works for Ana.
    _plant(client, ana_token)
    ok = client.post("/api/v1/me/totp", headers={"X-CSRF-Token": ana_token})
    assert ok.status_code == 200, ok.text


def test_signed_out_forms_work_and_signing_in_replaces_the_pre_session_token(client, personas):
    personas.visitor  # noqa: B018
    personas.commit()
    client.get("/sign-in")
    before = client.cookies["ov_csrf"]
    signed = client.post(
        "/sign-in",
        data={"csrf_token": before, "email": personas.visitor.email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    after = client.cookies["ov_csrf"]
    assert after != before
    # The pre-session token is worth nothing once signed in.
    _plant(client, before)
    stale = client.post("/sign-out", data={"csrf_token": before}, follow_redirects=False)
    assert stale.status_code == 403
    _plant(client, after)
    assert client.post("/sign-out", data={"csrf_token": after}).status_code == 200
