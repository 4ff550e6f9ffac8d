"""What is kept of an identity document, and for how long (issue 10, item 13): a pixel
limit, images stored re-encoded (no EXIF, nothing appended), replaced documents deleted
once the newer one is decided, and a retention purge by the worker, all audited."""

from __future__ import annotations

import io

from PIL import ExifTags, Image
from sqlalchemy import func, select

from openvisit import worker
from openvisit.audit.models import AuditEvent
from openvisit.people.models import IdentitySubmission, ReviewStatus
from tests.factories import sign_in_staff, sign_in_visitor

from .helpers import image_bytes

APPENDED = b"PK\x03\x04 a zip of secrets hidden after the image"


def _upload(client, facility_id, photo: bytes, selfie: bytes | None = None):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/me/identity",
        data={"facility_id": str(facility_id)},
        files={
            "photo_id": ("id.jpg", photo, "image/jpeg"),
            "selfie": ("me.png", selfie or image_bytes("PNG"), "image/png"),
        },
    )


def _stored(settings) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    folder = settings.upload_dir
    return {p.name: p.read_bytes() for p in folder.glob("*")} if folder.exists() else {}


def _jpeg_with_gps_and_a_tail() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (40.0, 26.0, 46.0),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (79.0, 58.0, 56.0),
    }
    out = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(out, "JPEG", exif=exif)
    return out.getvalue() + APPENDED


def test_an_image_over_40_megapixels_is_refused_with_the_reason_and_nothing_is_stored(
    client, personas, db, settings
):
    assert settings.upload_max_pixels == 40_000_000  # the default
    huge = io.BytesIO()
    Image.new("1", (8000, 6000)).save(huge, "PNG")  # 48 megapixels in a few kilobytes
    assert len(huge.getvalue()) < settings.upload_max_bytes
    sam = personas.new_visitor
    personas.commit()
    sign_in_visitor(client, sam)
    r = _upload(client, personas.facility.id, huge.getvalue())
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "file_too_large"
    assert r.json()["error"]["fields"] == {
        "photo_id": "The photo of your photo ID must be at most 40 megapixels; make it smaller"
    }
    assert _stored(settings) == {}
    assert db.scalar(select(func.count()).select_from(IdentitySubmission)) == 0


def test_a_stored_photo_is_re_encoded_without_its_gps_exif_or_the_bytes_appended_to_it(
    client, personas, db, settings
):
    sent = _jpeg_with_gps_and_a_tail()
    assert Image.open(io.BytesIO(sent)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # it has GPS
    sam = personas.new_visitor
    personas.commit()
    sign_in_visitor(client, sam)
    r = _upload(client, personas.facility.id, sent, selfie=image_bytes("PNG") + APPENDED)
    assert r.status_code == 201, r.text
    db.expire_all()
    submission = db.get(IdentitySubmission, r.json()["id"])
    stored = _stored(settings)
    photo, selfie = stored[submission.photo_id_file], stored[submission.selfie_file]
    for data in (photo, selfie):
        assert APPENDED not in data
        assert b"Exif" not in data and b"PhoneMaker" not in data
    with Image.open(io.BytesIO(photo)) as image:
        assert (image.format, image.size) == ("JPEG", (64, 48))
        assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert len(image.getexif()) == 0
    with Image.open(io.BytesIO(selfie)) as image:
        assert (image.format, image.size) == ("PNG", (40, 30))


def _review(client, facility_id, review_id, verdict="verify", **body):  # type: ignore[no-untyped-def]
    url = f"/api/v1/facilities/{facility_id}/identity-reviews/{review_id}/{verdict}"
    return client.post(url, json=body) if body else client.post(url)


def _deleted_events(db) -> list[tuple[int, str, str | None]]:  # type: ignore[no-untyped-def]
    db.expire_all()
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.tag == "identity:documents_deleted")
        .order_by(AuditEvent.id)
    )
    return [(e.subject_id, e.data["why"], e.actor_type) for e in events]


def test_replaced_documents_are_deleted_from_disk_once_the_newer_upload_is_decided(
    client, other_client, personas, db, settings, clock
):
    sam, scheduler = personas.new_visitor, personas.scheduler
    personas.commit()
    sign_in_visitor(client, sam)
    first = _upload(client, personas.facility.id, image_bytes("JPEG")).json()["id"]
    second = _upload(client, personas.facility.id, image_bytes("JPEG")).json()["id"]
    db.expire_all()
    old, new = db.get(IdentitySubmission, first), db.get(IdentitySubmission, second)
    old_files = {old.photo_id_file, old.selfie_file}
    new_files = {new.photo_id_file, new.selfie_file}
    assert set(_stored(settings)) == old_files | new_files  # kept while undecided

    sign_in_staff(other_client, scheduler, clock)
    fid = personas.facility.id
    assert _review(other_client, fid, second).status_code == 200
    assert set(_stored(settings)) == new_files
    assert _deleted_events(db) == [(first, "replaced", "staff")]
    gone = other_client.get(f"/api/v1/facilities/{fid}/identity-reviews/{first}/files/photo_id")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "document_missing")
    db.expire_all()
    assert db.get(IdentitySubmission, first).documents_deleted_at == clock.now()
    assert db.get(IdentitySubmission, second).documents_deleted_at is None


def test_the_worker_deletes_identity_documents_90_days_after_the_decision_and_audits_it(
    client, other_client, personas, db, settings, clock
):
    sam, scheduler = personas.new_visitor, personas.scheduler
    personas.commit()
    sign_in_visitor(client, sam)
    pending = _upload(client, personas.facility.id, image_bytes("JPEG")).json()["id"]
    sign_in_staff(other_client, scheduler, clock)
    fid = personas.facility.id
    rejected = _review(other_client, fid, pending, "reject", reason="The photo is blurred.")
    assert rejected.status_code == 200
    decided_at = clock.now()
    assert len(_stored(settings)) == 2

    clock.advance(days=89, hours=23)
    worker.run_jobs_once(db.info["factory"], clock, settings)
    assert len(_stored(settings)) == 2  # not yet
    assert _deleted_events(db) == []

    clock.advance(hours=2)
    worker.run_jobs_once(db.info["factory"], clock, settings)
    worker.run_jobs_once(db.info["factory"], clock, settings)  # a second run changes nothing
    assert _stored(settings) == {}
    assert _deleted_events(db) == [(pending, "retention", "system")]
    submission = db.get(IdentitySubmission, pending)
    # The decision and its reason stay; only the pictures are gone.
    assert (submission.status, submission.reason, submission.reviewed_at) == (
        ReviewStatus.REJECTED,
        "The photo is blurred.",
        decided_at,
    )
    assert submission.documents_deleted_at == clock.now()


def test_the_retention_is_a_setting(client, other_client, personas, db, settings, clock):
    settings.identity_document_retention_days = 7
    sam, scheduler = personas.new_visitor, personas.scheduler
    personas.commit()
    sign_in_visitor(client, sam)
    pending = _upload(client, personas.facility.id, image_bytes("JPEG")).json()["id"]
    sign_in_staff(other_client, scheduler, clock)
    assert _review(other_client, personas.facility.id, pending).status_code == 200
    clock.advance(days=7, minutes=1)
    worker.run_jobs_once(db.info["factory"], clock, settings)
    assert _stored(settings) == {}
