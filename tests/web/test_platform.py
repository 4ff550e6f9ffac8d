"""What every request gets: API docs offline, clear errors, size limits, headers."""

from __future__ import annotations

import re


def test_the_api_docs_render_from_local_assets_only(client):
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    for url in urls:
        assert url.startswith("/"), f"/docs loads {url} from outside"
        assert client.get(url).status_code == 200, url
    spec = client.get("/openapi.json").json()
    assert "/api/v1/staff-session" in spec["paths"]


def test_malformed_json_gets_a_400_with_a_code(client):
    r = client.post(
        "/api/v1/staff-session", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "malformed_json"


def test_wrong_types_and_oversized_strings_get_422_naming_the_field(client):
    r = client.post("/api/v1/staff-session", json={"email": "a" * 300, "password": 5})
    assert r.status_code == 422
    body = r.json()["error"]
    assert body["code"] == "invalid_input"
    assert set(body["fields"]) == {"email", "password"}


def test_an_oversized_request_body_is_refused_before_it_is_read(client, settings):
    r = client.post(
        "/api/v1/staff-session",
        content=b"x" * (settings.request_max_bytes + 1),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_unknown_pages_and_api_paths_answer_404(client):
    api = client.get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "Page not found" in page.text


def test_responses_carry_protective_headers(client):
    r = client.get("/")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_signed_out_staff_pages_redirect_to_sign_in_with_next(client):
    r = client.get("/staff", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/staff/sign-in?next=/staff"
