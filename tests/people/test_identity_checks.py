from __future__ import annotations

import stat

from sqlalchemy import func, select

from openvisit.audit.models import AuditEvent
from openvisit.people.models import IdentityStatus, IdentitySubmission, ReviewStatus, Visitor
from tests.factories import sign_in_staff, sign_in_visitor

from .helpers import image_bytes, mails_to


def _files(settings) -> list:
    return sorted(settings.upload_dir.glob("*")) if settings.upload_dir.exists() else []


def _submissions(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(IdentitySubmission))


def _upload(client, facility_id, photo=None, selfie=None, photo_name="id.png"):  # type: ignore[no-untyped-def]
    photo = image_bytes("PNG") if photo is None else photo
    selfie = image_bytes("JPEG") if selfie is None else selfie
    return client.post(
        "/api/v1/me/identity",
        data={"facility_id": str(facility_id)},
        files={
            "photo_id": (photo_name, photo, "image/png"),
            "selfie": ("me.jpg", selfie, "image/jpeg"),
        },
    )


def _pending_submission(client, personas, db):  # type: ignore[no-untyped-def]
    sam = personas.new_visitor
    personas.facility  # noqa: B018 - create it
    personas.commit()
    sign_in_visitor(client, sam)
    r = _upload(client, personas.facility.id)
    assert r.status_code == 201, r.text
    client.headers.pop("X-CSRF-Token")
    client.cookies.clear()
    return sam, r.json()["id"]


def test_a_visitor_uploads_a_real_photo_id_and_selfie_for_review(client, personas, db, settings):
    sam = personas.new_visitor
    facility = personas.facility
    personas.commit()
    sign_in_visitor(client, sam)
    r = _upload(client, facility.id)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    db.expire_all()
    assert db.get(Visitor, sam.id).identity_status == IdentityStatus.PENDING
    submission = db.get(IdentitySubmission, r.json()["id"])
    assert (submission.photo_id_type, submission.selfie_type) == ("image/png", "image/jpeg")
    stored = _files(settings)
    assert {p.name for p in stored} == {submission.photo_id_file, submission.selfie_file}
    assert "id.png" not in submission.photo_id_file  # random names, not the visitor's
    assert stat.S_IMODE(settings.upload_dir.stat().st_mode) == 0o700
    assert "static" not in str(settings.upload_dir)
    assert client.get("/api/v1/me").json()["identity_status"] == "pending"


def test_a_new_upload_replaces_an_older_pending_one(client, personas, db, settings):
    sam = personas.new_visitor
    personas.commit()
    sign_in_visitor(client, sam)
    first = _upload(client, personas.facility.id).json()["id"]
    second = _upload(client, personas.facility.id).json()["id"]
    db.expire_all()
    assert db.get(IdentitySubmission, first).status == ReviewStatus.REJECTED
    assert db.get(IdentitySubmission, second).status == ReviewStatus.PENDING


def test_a_text_file_renamed_jpg_is_refused_and_nothing_is_stored(client, personas, db, settings):
    sam = personas.new_visitor
    personas.commit()
    sign_in_visitor(client, sam)
    r = _upload(client, personas.facility.id, photo=b"just some text, honest", photo_name="id.jpg")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unsupported_file_type"
    assert "photo_id" in r.json()["error"]["fields"]
    assert _submissions(db) == 0 and _files(settings) == []
    assert db.get(Visitor, sam.id).identity_status == IdentityStatus.UNVERIFIED


def test_a_gif_is_refused_even_though_it_is_an_image(client, personas, db, settings):
    sam = personas.new_visitor
    personas.commit()
    sign_in_visitor(client, sam)
    r = _upload(client, personas.facility.id, selfie=image_bytes("GIF"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_file_type"
    assert _submissions(db) == 0 and _files(settings) == []


def test_an_oversized_file_is_refused_and_nothing_is_stored(client, personas, db, settings):
    sam = personas.new_visitor
    personas.commit()
    big = image_bytes("PNG", size=(64, 64), noisy=True)
    settings.upload_max_bytes = len(big) - 1
    sign_in_visitor(client, sam)
    r = _upload(client, personas.facility.id, photo=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert list(r.json()["error"]["fields"]) == ["photo_id"]
    assert _submissions(db) == 0 and _files(settings) == []


def test_uploading_needs_a_confirmed_email(client, personas, db, settings):
    sam = personas.new_visitor
    sam.email_verified_at = None
    personas.commit()
    sign_in_visitor(client, sam)
    r = _upload(client, personas.facility.id)
    assert r.status_code == 403 and r.json()["error"]["code"] == "email_not_verified"
    assert _submissions(db) == 0 and _files(settings) == []


def test_if_the_database_write_fails_the_files_are_removed(
    app, personas, db, settings, monkeypatch
):
    from fastapi.testclient import TestClient

    from openvisit import audit

    sam = personas.new_visitor
    personas.commit()

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the database went away")

    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        sign_in_visitor(c, sam)
        monkeypatch.setattr(audit.service, "record", broken)
        r = _upload(c, personas.facility.id)
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert _files(settings) == []
    assert _submissions(db) == 0


def test_the_identity_page_lists_facilities_and_uploads_through_a_form(client, personas, db):
    sam = personas.new_visitor
    personas.facility  # noqa: B018 - both facilities exist
    personas.other_facility  # noqa: B018
    personas.commit()
    sign_in_visitor(client, sam)
    page = client.get("/account/identity")
    assert "Riverside Jail" in page.text and "Lakeview Prison" in page.text
    assert 'enctype="multipart/form-data"' in page.text
    token = client.cookies.get("ov_csrf")
    client.headers.pop("X-CSRF-Token")
    missing = client.post(
        "/account/identity",
        data={"csrf_token": token, "facility_id": ""},
        files={"photo_id": ("id.png", image_bytes(), "image/png")},
    )
    assert missing.status_code == 422
    assert "Choose a facility" in missing.text and "Choose a photo of yourself" in missing.text
    ok = client.post(
        "/account/identity",
        data={"csrf_token": token, "facility_id": str(personas.facility.id)},
        files={
            "photo_id": ("id.png", image_bytes(), "image/png"),
            "selfie": ("me.png", image_bytes(), "image/png"),
        },
    )
    assert ok.status_code == 200 and "Being checked" in ok.text


def test_staff_see_pending_checks_oldest_first_and_verify_one(
    client, other_client, personas, db, clock
):
    _sam, review_id = _pending_submission(other_client, personas, db)
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    fid = personas.facility.id
    queue = client.get(f"/api/v1/facilities/{fid}/identity-reviews")
    assert queue.status_code == 200
    assert [r["id"] for r in queue.json()] == [review_id]
    assert queue.json()[0]["visitor"]["legal_name"] == "Sam Carter"

    photo = client.get(f"/api/v1/facilities/{fid}/identity-reviews/{review_id}/files/photo_id")
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/png"
    assert photo.headers["cache-control"] == "no-store"
    assert photo.content == image_bytes("PNG")
    viewed = db.scalars(select(AuditEvent).where(AuditEvent.tag == "identity:document_viewed"))
    assert len(viewed.all()) == 1

    r = client.post(f"/api/v1/facilities/{fid}/identity-reviews/{review_id}/verify")
    assert r.status_code == 200 and r.json()["status"] == "verified"
    db.expire_all()
    assert db.get(Visitor, _sam.id).identity_status == IdentityStatus.VERIFIED
    assert mails_to(db, "sam@example.com")[-1].subject == "Your identity is confirmed"
    again = client.post(
        f"/api/v1/facilities/{fid}/identity-reviews/{review_id}/reject", json={"reason": "Blurry"}
    )
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "already_decided",
        "message": "A colleague already decided this.",
    }
    assert client.get(f"/api/v1/facilities/{fid}/identity-reviews").json() == []


def test_rejecting_needs_a_reason_and_tells_the_visitor(client, other_client, personas, db, clock):
    sam, review_id = _pending_submission(other_client, personas, db)
    admin = personas.admin
    personas.commit()
    sign_in_staff(client, admin, clock)
    url = f"/api/v1/facilities/{personas.facility.id}/identity-reviews/{review_id}/reject"
    empty = client.post(url, json={"reason": "  "})
    assert empty.status_code == 422 and "reason" in empty.json()["error"]["fields"]
    too_long = client.post(url, json={"reason": "x" * 501})
    assert too_long.status_code == 422
    db.expire_all()
    assert db.get(IdentitySubmission, review_id).status == ReviewStatus.PENDING

    r = client.post(url, json={"reason": "The name on the ID doesn't match."})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    db.expire_all()
    assert db.get(Visitor, sam.id).identity_status == IdentityStatus.REJECTED
    mail = mails_to(db, "sam@example.com")[-1]
    assert "The name on the ID doesn't match." in mail.body
    tags = db.scalars(select(AuditEvent.tag).where(AuditEvent.tag.like("identity:%"))).all()
    assert "identity:rejected" in tags


def test_another_facilitys_staff_get_not_found_for_the_review_and_its_files(
    client, other_client, personas, db, clock
):
    _sam, review_id = _pending_submission(other_client, personas, db)
    other = personas.other_admin
    personas.commit()
    sign_in_staff(client, other, clock)
    ours, theirs = personas.facility.id, personas.other_facility.id
    for url in (
        f"/api/v1/facilities/{ours}/identity-reviews",
        f"/api/v1/facilities/{ours}/identity-reviews/{review_id}/files/photo_id",
    ):
        assert client.get(url).status_code == 404
    # Through their own facility's id, our review does not exist either.
    assert client.get(f"/api/v1/facilities/{theirs}/identity-reviews").json() == []
    for path in (f"/identity-reviews/{review_id}/files/selfie", f"/identity-reviews/{review_id}"):
        assert client.get(f"/api/v1/facilities/{theirs}{path}").status_code == 404
    r = client.post(f"/api/v1/facilities/{theirs}/identity-reviews/{review_id}/verify")
    assert r.status_code == 404
    db.expire_all()
    assert db.get(IdentitySubmission, review_id).status == ReviewStatus.PENDING


def test_staff_without_the_review_permission_are_refused(client, other_client, personas, db, clock):
    _sam, review_id = _pending_submission(other_client, personas, db)
    officer = personas.officer
    personas.commit()
    sign_in_staff(client, officer, clock)
    base = f"/api/v1/facilities/{personas.facility.id}/identity-reviews"
    assert client.get(base).status_code == 403
    assert client.get(f"{base}/{review_id}/files/photo_id").status_code == 403
    assert client.post(f"{base}/{review_id}/verify").status_code == 403
    db.expire_all()
    assert db.get(IdentitySubmission, review_id).status == ReviewStatus.PENDING


def test_the_document_is_not_reachable_by_visitors_or_anonymous(client, other_client, personas, db):
    sam, review_id = _pending_submission(other_client, personas, db)
    url = f"/api/v1/facilities/{personas.facility.id}/identity-reviews/{review_id}/files/photo_id"
    assert client.get(url).status_code == 401
    sign_in_visitor(client, sam)
    assert client.get(url).status_code == 401


def test_the_staff_review_pages_show_the_queue_and_a_decision_form(
    client, other_client, personas, db, clock
):
    scheduler = personas.scheduler
    personas.commit()
    sign_in_staff(client, scheduler, clock)
    fid = personas.facility.id
    empty = client.get(f"/staff/facilities/{fid}/identity-reviews")
    assert empty.status_code == 200 and "No identity checks are waiting" in empty.text

    _sam, review_id = _pending_submission(other_client, personas, db)
    queue = client.get(f"/staff/facilities/{fid}/identity-reviews")
    assert "Sam Carter" in queue.text
    detail = client.get(f"/staff/facilities/{fid}/identity-reviews/{review_id}")
    assert detail.status_code == 200
    assert f"/identity-reviews/{review_id}/files/photo_id" in detail.text
    assert f"/identity-reviews/{review_id}/files/selfie" in detail.text
    token = client.cookies.get("ov_csrf")
    no_reason = client.post(
        f"/staff/facilities/{fid}/identity-reviews/{review_id}/reject",
        data={"csrf_token": token, "reason": ""},
    )
    assert no_reason.status_code == 422 and "Enter the reason" in no_reason.text
    done = client.post(
        f"/staff/facilities/{fid}/identity-reviews/{review_id}/verify", data={"csrf_token": token}
    )
    assert done.status_code == 200 and "Sam Carter" in done.text and "confirmed" in done.text
    twice = client.post(
        f"/staff/facilities/{fid}/identity-reviews/{review_id}/verify", data={"csrf_token": token}
    )
    assert twice.status_code == 409 and "A colleague already decided this" in twice.text


def test_every_review_route_declares_its_permission_in_the_api_description(client):
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    review_paths = {
        path: ops
        for path, ops in schema.json()["paths"].items()
        if path.startswith("/api/v1/facilities/{facility_id}/") and "-reviews" in path
    }
    assert len(review_paths) >= 6
    for path, ops in review_paths.items():
        for method, op in ops.items():
            assert op.get("x-permission") == "review_visitors", (method, path)
