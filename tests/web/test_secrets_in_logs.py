"""No secret in a log (issue 10, item 3): mail bodies stay out of a production log,
a development log shows links with their tokens redacted, and the access log of a
real `openvisit serve` never holds a token or an activation code."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import openvisit
from openvisit.app import create_app
from openvisit.config import Settings
from openvisit.notifications.models import Notification
from openvisit.redaction import RedactSecrets, redact_secrets
from tests.people.helpers import link_token

LONG_KEY = "a-production-secret-key-of-48-characters-0123456"


def _reset_mail(db, app, email: str) -> Notification:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as browser:
        r = browser.post("/api/v1/password-reset", json={"email": email})
        assert r.status_code == 202
    db.expire_all()
    return db.scalars(select(Notification).where(Notification.to_address == email)).one()


@pytest.mark.parametrize("env", ["production", "development"])
def test_a_reset_link_never_reaches_the_log(tmp_path, db, clock, personas, caplog, env):
    personas.visitor  # noqa: B018
    personas.commit()
    settings = Settings(
        env=env, var_dir=tmp_path / "var", database_url="sqlite://", secret_key=LONG_KEY
    )
    app = create_app(settings, clock=clock, sessionmaker=db.info["factory"])
    with caplog.at_level(logging.DEBUG):
        mail = _reset_mail(db, app, personas.visitor.email)
    token = link_token(mail, "/reset-password")
    assert len(token) >= 20 and token not in caplog.text
    assert "mail" in caplog.text and personas.visitor.email in caplog.text
    if env == "production":
        # Not even the body: only that a message went to whom, about what.
        assert "reset-password" not in caplog.text and "Hello" not in caplog.text
    else:
        assert "/reset-password?token=[redacted]" in caplog.text


def test_a_token_stays_in_the_outbox_for_delivery(db, clock, settings, caplog):
    from openvisit.notifications.service import queue_email

    with caplog.at_level(logging.INFO, logger="openvisit.mail"):
        row = queue_email(
            db,
            clock,
            settings,
            to="ana@example.com",
            subject="Sign in",
            body="https://x.test/a?next=1&code=s3cr3t-code#top and ?token=abc.def-ghi",
        )
    assert "s3cr3t-code" not in caplog.text and "abc.def-ghi" not in caplog.text
    assert "next=1&code=[redacted]#top" in caplog.text
    assert "code=s3cr3t-code" in row.body  # the mail itself still works


def test_the_redaction_filter_rewrites_an_access_log_record():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/kiosk/activate?Code=abc&x=1", "1.1", 200),
        None,
    )
    assert RedactSecrets().filter(record)
    assert (
        record.getMessage()
        == '127.0.0.1:5 - "GET /kiosk/activate?Code=[redacted]&x=1 HTTP/1.1" 200'
    )
    assert redact_secrets("/x?tokens=1&mytoken=2") == "/x?tokens=1&mytoken=2"  # names only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_the_access_log_of_a_real_server_redacts_tokens_and_codes(tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(openvisit.__file__).parents[1]),  # the code under test
        "OPENVISIT_ENV": "development",
        "OPENVISIT_VAR_DIR": str(tmp_path / "var"),
        "OPENVISIT_SECRET_KEY": LONG_KEY,
        "OPENVISIT_BASE_URL": base,
        "OPENVISIT_MEDIA_ADDRESSES": "127.0.0.1",
    }
    log_path = tmp_path / "server.log"
    secrets = {
        "/verify-email?token=verify-secret-0001": 200,
        "/reset-password?token=reset-secret-0002": 400,
        "/kiosk/activate?code=kiosk-secret-0003": 200,
        "/no-such-page?x=1&token=stray-secret-0004": 404,
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "openvisit", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if _status(f"{base}/healthz") == 200:
                        break
                except OSError:
                    pass
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            for path, status in secrets.items():
                assert _status(base + path) == status, path
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = log_path.read_text()
    for path in secrets:
        assert "GET " + path.split("?")[0] in text, text  # the requests were logged
        assert path.rsplit("=", 1)[1] not in text, text
    assert "/kiosk/activate?code=[redacted]" in text
    assert "/verify-email?token=[redacted]" in text
    assert "/no-such-page?x=1&token=[redacted]" in text
