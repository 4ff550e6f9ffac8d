"""Identity checks: a visitor sends a photo ID and a selfie to a facility, whose staff
confirm who they are (people.reviews decides them)."""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from openvisit import audit
from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.clock import Clock
from openvisit.config import Settings
from openvisit.errors import Code, Conflict, DomainError, InvalidInput, NotFound
from openvisit.facilities.models import Facility
from openvisit.people import reviews, verifications
from openvisit.people.accounts import check_email_verified, visitor_actor
from openvisit.people.models import IdentityStatus, IdentitySubmission, ReviewStatus, Visitor

# Pillow's name for a format -> the type we store and serve it as.
IMAGE_TYPES = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
}
DOCUMENTS = ("photo_id", "selfie")


class FileTooLarge(DomainError):
    code = Code.FILE_TOO_LARGE


class UnsupportedFileType(DomainError):
    code = Code.UNSUPPORTED_FILE_TYPE


@dataclass(frozen=True)
class Upload:
    """An uploaded file as the route read it: at most ``upload_max_bytes + 1`` bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class CleanImage:
    """An upload as it is stored: decoded and encoded again, so nothing rides along
    (EXIF such as GPS, comments, bytes appended after the image)."""

    media_type: str
    extension: str
    data: bytes


def _reencoded(image: Image.Image, kind: str) -> bytes:
    """The picture alone, upright, in its own format; no metadata is carried over."""
    upright = ImageOps.exif_transpose(image)
    transparency = upright.info.get("transparency")
    upright.info = {} if transparency is None else {"transparency": transparency}
    if kind == "JPEG" and upright.mode not in ("L", "RGB", "CMYK"):
        upright = upright.convert("RGB")
    if kind == "WEBP" and upright.mode not in ("RGB", "RGBA"):
        upright = upright.convert("RGBA" if "A" in upright.mode or transparency else "RGB")
    out = io.BytesIO()
    options: dict[str, object] = {"quality": 90} if kind in ("JPEG", "WEBP") else {}
    upright.save(out, format=kind, **options)
    return out.getvalue()


def _check_image(settings: Settings, upload: Upload, field: str, label: str) -> CleanImage:
    """The upload re-encoded, if it really is a JPEG, PNG or WebP image of at most
    ``upload_max_pixels``. The size is checked before the pixels are decoded."""
    if not upload.data:
        msg = f"Choose a photo of {label}"
        raise InvalidInput(msg + ".", fields={field: msg})
    if len(upload.data) > settings.upload_max_bytes:
        limit_mb = settings.upload_max_bytes / (1024 * 1024)
        msg = f"The photo of {label} must be smaller than {limit_mb:g} MB"
        raise FileTooLarge(msg + ".", fields={field: msg})
    limit_mp = settings.upload_max_pixels / 1_000_000
    too_big = f"The photo of {label} must be at most {limit_mp:g} megapixels; make it smaller"
    msg = f"The photo of {label} must be a JPEG, PNG or WebP image"
    try:
        with Image.open(io.BytesIO(upload.data)) as image:
            kind = image.format
            if kind not in IMAGE_TYPES:
                raise UnsupportedFileType(msg + ".", fields={field: msg})
            width, height = image.size
            if width * height > settings.upload_max_pixels:
                raise FileTooLarge(too_big + ".", fields={field: too_big})
            image.load()
            data = _reencoded(image, kind)
    except Image.DecompressionBombError:
        raise FileTooLarge(too_big + ".", fields={field: too_big}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise UnsupportedFileType(msg + ".", fields={field: msg}) from None
    media_type, extension = IMAGE_TYPES[kind]
    return CleanImage(media_type, extension, data)


def _private_dir(settings: Settings) -> Path:
    directory = settings.upload_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    os.chmod(directory.parent, 0o700)  # var/private
    return directory


def _write_private(directory: Path, extension: str, data: bytes) -> str:
    name = secrets.token_hex(16) + extension
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return name


def submit_identity(
    session: Session,
    clock: Clock,
    settings: Settings,
    visitor: Visitor,
    *,
    facility_id: int | None,
    photo_id: Upload,
    selfie: Upload,
    ip: str = "",
) -> IdentitySubmission:
    """Store a photo ID and a selfie for staff of the chosen facility to check."""
    now = clock.now()
    check_email_verified(visitor)
    chosen = session.get(Facility, facility_id) if facility_id else None
    if chosen is not None and verifications.verified_at(session, visitor.id, chosen.id):
        raise Conflict(
            f"Your identity is already confirmed for {chosen.name}.", code=Code.ALREADY_VERIFIED
        )
    problems: list[DomainError] = []
    checked: dict[str, CleanImage] = {}
    for field, upload, label in (
        ("photo_id", photo_id, "your photo ID"),
        ("selfie", selfie, "yourself"),
    ):
        try:
            checked[field] = _check_image(settings, upload, field, label)
        except DomainError as exc:
            problems.append(exc)
    try:
        facility = reviews.chosen_facility(session, facility_id)
    except DomainError as exc:
        problems.append(exc)
    if problems:
        # Every problem is reported; the error's code is theirs if they share one.
        first = problems[0]
        for other in problems[1:]:
            first.fields = first.fields | other.fields
        if any(type(p) is not type(first) for p in problems):
            raise InvalidInput("Some of the information given is not valid.", fields=first.fields)
        raise first

    directory = _private_dir(settings)
    written: list[Path] = []
    try:
        photo, portrait = checked["photo_id"], checked["selfie"]
        photo_name = _write_private(directory, photo.extension, photo.data)
        written.append(directory / photo_name)
        selfie_name = _write_private(directory, portrait.extension, portrait.data)
        written.append(directory / selfie_name)
        session.execute(
            update(IdentitySubmission)
            .where(
                IdentitySubmission.visitor_id == visitor.id,
                IdentitySubmission.status == ReviewStatus.PENDING,
            )
            .values(
                status=ReviewStatus.REJECTED, reason="Replaced by a newer upload.", reviewed_at=now
            )
            .execution_options(synchronize_session=False)
        )
        submission = IdentitySubmission(
            visitor_id=visitor.id,
            facility_id=facility.id,
            photo_id_file=photo_name,
            photo_id_type=photo.media_type,
            selfie_file=selfie_name,
            selfie_type=portrait.media_type,
            status=ReviewStatus.PENDING,
            reason="",
            submitted_at=now,
        )
        session.add(submission)
        if visitor.identity_status != IdentityStatus.VERIFIED:  # confirmed elsewhere stays so
            visitor.identity_status = IdentityStatus.PENDING
        session.flush()
        reviews.record(session, CHECKS, submission, "submitted", visitor_actor(visitor, ip), now)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return submission


def latest_identity_submission(session: Session, visitor: Visitor) -> IdentitySubmission | None:
    return session.scalar(
        select(IdentitySubmission)
        .where(IdentitySubmission.visitor_id == visitor.id)
        .order_by(IdentitySubmission.submitted_at.desc(), IdentitySubmission.id.desc())
        .limit(1)
    )


def identity_document(
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: AuditActor,
    facility: Facility,
    review_id: int,
    which: str,
) -> tuple[Path, str]:
    """The private file to stream to a reviewer, and its type. Each viewing is audited."""
    if which not in DOCUMENTS:
        raise NotFound("We couldn't find that document.")
    submission, _visitor = reviews.access(session, CHECKS, facility, review_id)
    name, media_type = (
        (submission.photo_id_file, submission.photo_id_type)
        if which == "photo_id"
        else (submission.selfie_file, submission.selfie_type)
    )
    path = settings.upload_dir / name
    if submission.documents_deleted_at is not None or not path.is_file():
        raise NotFound("That document is no longer stored.", code=Code.DOCUMENT_MISSING)
    audit.service.record(
        session,
        tag="identity:document_viewed",
        actor=actor,
        at=clock.now(),
        facility_id=facility.id,
        subject=("identity_submission", submission.id),
        data={"document": which},
    )
    return path, media_type


def _decided(session: Session, submission: IdentitySubmission, visitor: Visitor) -> None:
    """A verified check becomes the reviewing facility's verification (it counts there;
    elsewhere only where others' checks are accepted). The visitor's status is what their
    account page shows: confirmed once any facility confirmed them."""
    if submission.status == ReviewStatus.VERIFIED:
        verifications.record_verification(
            session,
            visitor_id=visitor.id,
            facility_id=submission.facility_id,
            at=submission.reviewed_at or submission.submitted_at,
            submission_id=submission.id,
            staff_id=submission.reviewed_by_staff_id,
        )
        visitor.identity_status = IdentityStatus.VERIFIED
    elif not verifications.verified_anywhere(session, visitor.id):
        visitor.identity_status = IdentityStatus.REJECTED


def _letter(
    submission: IdentitySubmission, facility: Facility, settings: Settings
) -> tuple[str, str]:
    if submission.status == ReviewStatus.VERIFIED:
        return "Your identity is confirmed", (
            f"Staff at {facility.name} checked your photos and confirmed your identity.\n\n"
            f"You can now ask to be approved to visit someone: {settings.base_url}/account\n"
        )
    return "We couldn't confirm your identity", (
        f"Staff at {facility.name} couldn't confirm your identity from the photos you "
        f"sent.\n\nReason: {submission.reason}\n\n"
        f"You can send new photos here: {settings.base_url}/account/identity\n"
    )


def _delete_documents(
    session: Session,
    settings: Settings,
    submission: IdentitySubmission,
    actor: AuditActor,
    now: dt.datetime,
    why: str,
) -> bool:
    """Delete a submission's two files from disk, once (a compare-and-set on
    ``documents_deleted_at``), audited at its facility. Runs inside the caller's
    transaction: should that roll back, the files are gone but the row says they are
    not, and the next purge marks it (deleting a missing file is no error)."""
    marked = cast(
        CursorResult[Any],
        session.execute(
            update(IdentitySubmission)
            .where(
                IdentitySubmission.id == submission.id,
                IdentitySubmission.documents_deleted_at.is_(None),
            )
            .values(documents_deleted_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    if marked.rowcount != 1:
        return False  # another node got there first
    for name in (submission.photo_id_file, submission.selfie_file):
        (settings.upload_dir / name).unlink(missing_ok=True)
    audit.service.record(
        session,
        tag="identity:documents_deleted",
        actor=actor,
        at=now,
        facility_id=submission.facility_id,
        subject=("identity_submission", submission.id),
        data={"visitor_id": submission.visitor_id, "why": why},
    )
    return True


def _delete_replaced(
    session: Session,
    settings: Settings,
    decided: IdentitySubmission,
    actor: AuditActor,
    now: dt.datetime,
) -> None:
    """Once a submission is decided, the visitor's earlier ones (which it replaced, or
    which were turned down before it) are no longer needed: their documents go."""
    earlier = session.scalars(
        select(IdentitySubmission)
        .where(
            IdentitySubmission.visitor_id == decided.visitor_id,
            IdentitySubmission.id < decided.id,
            IdentitySubmission.status != ReviewStatus.PENDING,
            IdentitySubmission.documents_deleted_at.is_(None),
        )
        .order_by(IdentitySubmission.id)
    )
    for submission in earlier:
        _delete_documents(session, settings, submission, actor, now, "replaced")


def purge_expired_documents(
    session: Session, clock: Clock, settings: Settings, *, batch: int = 200
) -> int:
    """The worker's retention purge: delete the documents of every submission decided
    more than ``identity_document_retention_days`` ago (the decision, the reason and the
    audit trail stay). At most ``batch`` a run; how many were deleted."""
    now = clock.now()
    cutoff = now - dt.timedelta(days=settings.identity_document_retention_days)
    due = session.scalars(
        select(IdentitySubmission)
        .where(
            IdentitySubmission.status != ReviewStatus.PENDING,
            IdentitySubmission.reviewed_at <= cutoff,
            IdentitySubmission.documents_deleted_at.is_(None),
        )
        .order_by(IdentitySubmission.reviewed_at, IdentitySubmission.id)
        .limit(batch)
    ).all()
    return sum(
        _delete_documents(session, settings, submission, SYSTEM, now, "retention")
        for submission in due
    )


# Decided with people.reviews.decide.
CHECKS = reviews.Kind(
    IdentitySubmission,
    missing="We couldn't find that identity check.",
    tag="identity",
    subject="identity_submission",
    letter=_letter,
    decided=_decided,
    then=_delete_replaced,
)
