"""Writes about organizations, invitations and documents. Each security-relevant write
records its audit event in the same transaction; ``actor`` is checked against
``permissions`` (None: the platform itself, unchecked)."""

from __future__ import annotations

import hashlib
import logging
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from auditlog import audit
from core.emails import (
    EmailNotSent,
    send_templated_email,
    send_templated_email_later,
)
from core.errors import PayloadTooLarge, ValidationFailed
from core.roles import Role
from core.services import model_update

from . import filetypes, permissions
from .models import (
    Document,
    Invitation,
    Organization,
    hash_invitation_token,
    invitation_ttl,
    new_invitation_token,
)
from .selectors import invitation_problem

logger = logging.getLogger(__name__)


def unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


# --- Organizations -----------------------------------------------------------------


@transaction.atomic
def organization_create(
    *,
    name: str,
    slug: str | None = None,
    mfa_required: bool = False,
    actor=None,
    request=None,
) -> Organization:
    permissions.check_organization_write(actor)
    org = Organization.objects.create(
        name=name, slug=slug or unique_slug(name), mfa_required=mfa_required
    )
    audit.record(
        audit.Action.ORGANIZATION_CREATED,
        actor=actor,
        target=org,
        organization=org,
        request=request,
    )
    return org


ORGANIZATION_FIELDS = ("name", "slug", "mfa_required", "is_active")


@transaction.atomic
def organization_update(
    *, organization: Organization, actor=None, request=None, **changes
) -> Organization:
    """Change name, slug, mfa_required or is_active. Deactivation and an MFA
    requirement take effect on every member's tokens at once (the cached state follows
    the save through ``accounts.signals``)."""

    permissions.check_organization_write(actor)
    unknown = set(changes) - set(ORGANIZATION_FIELDS)
    if unknown:
        raise ValueError(f"Not organization fields: {sorted(unknown)}")
    changed = model_update(instance=organization, data=changes)
    if not changed:
        return organization
    if changed.get("is_active") == [True, False]:
        action = audit.Action.ORGANIZATION_DEACTIVATED
    else:
        action = audit.Action.ORGANIZATION_UPDATED
    audit.record(
        action,
        actor=actor,
        target=organization,
        organization=organization,
        request=request,
        data={"changed": changed},
    )
    return organization


def organization_deactivate(
    *, organization: Organization, actor=None, request=None
) -> Organization:
    """Soft delete: members can no longer log in, and their tokens are refused."""
    return organization_update(
        organization=organization, actor=actor, request=request, is_active=False
    )


# --- Invitations -------------------------------------------------------------------


def account_exists_notice(
    *, user, reason: str, organization: str = "", at_once: bool = False
) -> None:
    """Tell the owner of an address that someone tried to create an account for it,
    invite it or move another account to it: what registration, invitations and
    email changes do instead of telling the one who asked (no account enumeration).
    Sent like the mail it stands in for, so the answer takes as long: after the
    transaction, off the request's thread (``core.emails``), or ``at_once`` in the
    request, as invitations are."""
    context = {
        "name": user.get_short_name(),
        "email": user.email,
        "reason": reason,
        "organization": organization,
    }
    if at_once:
        send_templated_email(template="account_exists", to=user.email, context=context)
    else:
        send_templated_email_later(
            template="account_exists", to=user.email, context=context
        )


def _send_invitation_email(invitation: Invitation, token: str, inviter) -> None:
    """The sign-up link to the invited address; for an address that already has an
    account, a notice to its owner instead (the inviter is not told)."""
    owner = get_user_model().objects.filter(email__iexact=invitation.email).first()
    if owner is not None:
        account_exists_notice(
            user=owner,
            reason=f"You were invited to join {invitation.organization.name} on XenX.",
            organization=invitation.organization.name,
            at_once=True,  # like the invitation mail (the inviter learns if it failed)
        )
        return
    send_templated_email(
        template="invitation",
        to=invitation.email,
        context={
            "invitation": invitation,
            "token": token,
            "organization": invitation.organization,
            "role": invitation.get_role_display(),
            "inviter": inviter,
        },
    )


def _mail(invitation: Invitation, token: str, inviter) -> None:
    """Send, and record on ``invitation.email_sent`` whether it went out."""
    try:
        _send_invitation_email(invitation, token, inviter)
        invitation.email_sent = True
    except EmailNotSent:
        # The mail server (or the mail directory) failed: the invitation stands and
        # the inviter has the token to pass on. A template error is a bug: not caught.
        logger.exception("could not send the invitation email %s", invitation.pk)
        invitation.email_sent = False


def invitation_create(
    *, organization: Organization, email: str, role: str, actor=None, request=None
) -> tuple[Invitation, str]:
    """Invite ``email`` to ``organization`` with ``role``; returns the invitation and
    its token (shown once: only its hash is stored) and emails the sign-up link.
    ``invitation.email_sent`` tells whether the email went out. An address that
    already has an account gets the same answer and its owner a notice instead of
    the link, so an inviter cannot learn who has an account."""

    if role not in Role.values:
        raise ValidationFailed(details={"role": [f"Unknown role {role!r}."]})
    permissions.check_invitation_create(actor, organization=organization, role=role)
    email = email.strip().lower()
    if not organization.is_active:
        raise ValidationFailed(
            details={"organization": ["This organization is deactivated."]}
        )
    token = new_invitation_token()
    now = timezone.now()
    with transaction.atomic():
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            token_hash=hash_invitation_token(token),
            created_by=actor if getattr(actor, "pk", None) else None,
            created_at=now,
            expires_at=now + invitation_ttl(),
        )
        _audit_invitation(
            audit.Action.INVITATION_CREATED, invitation, actor=actor, request=request
        )
    _mail(invitation, token, actor)
    return invitation, token


def _pending_locked(invitation: Invitation) -> Invitation:
    locked = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=invitation.pk)
    )
    if locked.is_used or locked.is_revoked:
        raise ValidationFailed(
            f"This invitation is {locked.status}.",
            details={"invitation": [f"This invitation is {locked.status}."]},
        )
    return locked


def _audit_invitation(action: str, invitation: Invitation, *, actor, request) -> None:
    """Every invitation event records the same: which address, to which role, in the
    invitation's organization."""
    audit.record(
        action,
        actor=actor,
        target=invitation,
        organization=invitation.organization,
        request=request,
        data={"email": invitation.email, "role": invitation.role},
    )


def invitation_resend(
    *, invitation: Invitation, actor=None, request=None
) -> tuple[Invitation, str]:
    """A new token and a new expiry for a pending (or expired) invitation, mailed
    again: the old link stops working. Same rules as inviting (``actor`` may invite
    this role to this organization); audited ``invitation.resent``."""
    permissions.check_invitation_create(
        actor, organization=invitation.organization, role=invitation.role
    )
    token = new_invitation_token()
    with transaction.atomic():
        locked = _pending_locked(invitation)
        locked.token_hash = hash_invitation_token(token)
        locked.expires_at = timezone.now() + invitation_ttl()
        locked.save(update_fields=["token_hash", "expires_at"])
        _audit_invitation(
            audit.Action.INVITATION_RESENT, locked, actor=actor, request=request
        )
    _mail(locked, token, actor)
    return locked, token


def invitation_revoke(*, invitation: Invitation, actor=None, request=None) -> None:
    """Withdraw a pending invitation: its link then shows "no longer valid". Same
    rules as inviting; audited ``invitation.revoked``."""
    permissions.check_invitation_create(
        actor, organization=invitation.organization, role=invitation.role
    )
    with transaction.atomic():
        locked = _pending_locked(invitation)
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        _audit_invitation(
            audit.Action.INVITATION_REVOKED, locked, actor=actor, request=request
        )


def invitation_accept(*, invitation: Invitation, user, request=None) -> Invitation:
    """Use ``invitation`` for ``user`` (once: the row is locked, so two concurrent
    registrations cannot both use it). Raises ValidationFailed on ``invitation`` when it
    cannot be used. Putting the user in the invitation's organization with its role is
    the caller's (``accounts`` registration, through ``user_update``)."""

    with transaction.atomic():
        locked = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("organization")
            .get(pk=invitation.pk)
        )
        problem = invitation_problem(locked, email=user.email)
        if problem:
            raise ValidationFailed(problem, details={"invitation": [problem]})
        locked.accepted_at = timezone.now()
        locked.accepted_by = user
        locked.save(update_fields=["accepted_at", "accepted_by"])
        _audit_invitation(
            audit.Action.INVITATION_ACCEPTED, locked, actor=user, request=request
        )
    invitation.accepted_at, invitation.accepted_by = locked.accepted_at, user
    return locked


# --- Documents ---------------------------------------------------------------------


def max_upload_bytes() -> int:
    return settings.XENX_MAX_UPLOAD_BYTES


def _sha256(fileobj) -> str:
    digest = hashlib.sha256()
    fileobj.seek(0)
    while chunk := fileobj.read(64 * 1024):
        digest.update(chunk)
    fileobj.seek(0)
    return digest.hexdigest()


def document_create(
    *, owner, upload, title: str = "", actor=None, request=None
) -> Document:
    """Store ``upload`` (a Django UploadedFile) as a document of ``owner``, a client.

    413 over XENX_MAX_UPLOAD_BYTES; 415 unless its bytes are an allowed type matching
    its name. Stored under a generated name through the default storage.
    """

    permissions.check_document_create(actor)
    if owner.role != Role.CLIENT:
        raise ValidationFailed(details={"owner": ["Documents belong to clients."]})
    if upload.size is not None and upload.size > max_upload_bytes():
        raise PayloadTooLarge(
            f"The file is larger than {max_upload_bytes()} bytes.",
        )
    # Metadata only; control characters could not go into a download header.
    original = (upload.name or "").replace("\\", "/").rsplit("/", 1)[-1]
    original = "".join(ch for ch in original if ch.isprintable())[:255]
    sniffed = filetypes.sniff(upload, original)
    digest = _sha256(upload)
    document = Document(
        owner=owner,
        title=(title or original or "Untitled")[:200],
        original_filename=original,
        content_type=sniffed.mime,
        size=upload.size,
        sha256=digest,
        uploaded_by=actor if getattr(actor, "pk", None) else None,
    )
    # The stored name is generated (upload_to); only the extension of the detected
    # type is kept, never the client's name.
    document.file.save(f"upload{sniffed.extension}", upload, save=False)
    try:
        with transaction.atomic():
            document.save()
            audit.record(
                audit.Action.DOCUMENT_UPLOADED,
                actor=actor,
                target=document,
                organization=owner.organization,
                request=request,
                data={
                    "owner": owner.pk,
                    "content_type": sniffed.mime,
                    "size": document.size,
                },
            )
    except BaseException:
        document.file.storage.delete(document.file.name)
        raise
    return document


def _delete_stored_file(storage, name: str) -> None:
    try:
        storage.delete(name)
    except OSError:
        # The file system refused (permissions, a read-only or gone volume): the row is
        # deleted and committed, a leftover file must not turn that into an error.
        # (FileSystemStorage ignores a file already gone; a name outside its root is
        # SuspiciousFileOperation and a bug is itself: both raise, neither an outage.)
        logger.exception("could not delete stored file %s", name)


def delete_file_on_commit(document: Document) -> None:
    """Remove the stored file once the row's deletion is committed."""
    if document.file.name:
        storage = document.file.storage or default_storage
        transaction.on_commit(partial(_delete_stored_file, storage, document.file.name))


@transaction.atomic
def document_delete(*, document: Document, actor=None, request=None) -> None:
    """Delete the row and (after commit, by the post_delete signal) its file."""

    permissions.check_document_delete(actor)
    audit.record(
        audit.Action.DOCUMENT_DELETED,
        actor=actor,
        target=document,
        organization=document.owner.organization,
        request=request,
        data={"owner": document.owner_id, "title": document.title},
    )
    document.delete()
