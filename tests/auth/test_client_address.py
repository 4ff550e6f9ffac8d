"""The client's address comes from a forwarding header only when a trusted proxy sent it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from openvisit.app import create_app
from openvisit.audit.models import AuditEvent
from openvisit.auth.addresses import client_address
from openvisit.auth.models import UserSession
from openvisit.config import Settings
from tests.factories import PASSWORD


def _settings(**kw):
    return Settings(env="test", secret_key="k", database_url="sqlite://", **kw)


def _sign_in_from(app, peer, maria, headers):
    with TestClient(app, base_url="https://testserver", client=(peer, 4711)) as c:
        r = c.post(
            "/api/v1/visitor-session",
            json={"email": maria.email, "password": PASSWORD},
            headers=headers,
        )
        assert r.status_code == 200, r.text


def _recorded_address(db):
    db.expire_all()
    session_ip = db.scalars(select(UserSession.ip).order_by(UserSession.id.desc())).first()
    audit_ip = db.scalars(
        select(AuditEvent.ip)
        .where(AuditEvent.tag == "visitor:signed_in")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert session_ip == audit_ip
    return session_ip


def test_x_forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy(app, personas, db):
    maria = personas.visitor
    personas.commit()
    _sign_in_from(app, "198.51.100.20", maria, {"X-Forwarded-For": "203.0.113.9"})
    assert _recorded_address(db) == "198.51.100.20"


def test_x_forwarded_for_is_honoured_from_a_trusted_proxy(settings, clock, personas, db):
    maria = personas.visitor
    personas.commit()
    settings.trusted_proxies = "10.0.0.0/8"
    app = create_app(settings, clock=clock, sessionmaker=db.info["factory"])
    # A client can write anything at the start; the proxy appends what it saw.
    _sign_in_from(app, "10.1.2.3", maria, {"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
    assert _recorded_address(db) == "203.0.113.9"
    # A peer outside the trusted network is still taken at its word only.
    _sign_in_from(app, "198.51.100.20", maria, {"X-Forwarded-For": "203.0.113.9"})
    assert _recorded_address(db) == "198.51.100.20"


def test_the_forwarded_header_is_read_when_configured_and_x_forwarded_for_is_not():
    settings = _settings(trusted_proxies="10.0.0.1, 10.0.0.2", trusted_proxy_header="forwarded")
    line = 'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2'
    assert client_address("10.0.0.1", [line], settings) == "2001:db8:cafe::17"
    assert client_address("10.0.0.1", ["for=192.0.2.60:8080"], settings) == "192.0.2.60"


def test_the_chain_is_followed_through_trusted_proxies_only():
    settings = _settings(trusted_proxies="10.0.0.0/8, 127.0.0.1")
    assert client_address("127.0.0.1", ["203.0.113.9, 10.0.0.5"], settings) == "203.0.113.9"
    # Header lines are one list, in order.
    assert client_address("127.0.0.1", ["1.1.1.1", "203.0.113.9, 10.0.0.5"], settings) == (
        "203.0.113.9"
    )
    # No header, or one that names no address: the nearest proxy is as far as it goes.
    assert client_address("10.0.0.5", [], settings) == "10.0.0.5"
    assert client_address("10.0.0.5", ["unknown"], settings) == "10.0.0.5"
    # Nothing is trusted by default.
    assert client_address("127.0.0.1", ["203.0.113.9"], _settings()) == "127.0.0.1"


def test_a_trusted_proxy_that_is_not_an_address_is_refused_at_start_up():
    with pytest.raises(ValidationError, match="not an address or a network"):
        _settings(trusted_proxies="10.0.0.0/8, proxy.example")
