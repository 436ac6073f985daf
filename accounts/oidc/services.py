"""Writes about applications and their sign-ins. Every one that can widen or narrow
what a token may do records its audit event in the same transaction, and every one
that narrows an application ends its tokens through the revocation records the doors
read (``accounts.revocation``), so they are refused within a second everywhere."""

from __future__ import annotations

import hashlib
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_refresh_token_model,
)

from auditlog import audit
from core.errors import Forbidden
from core.roles import Role

from .. import revocation
from ..models import Application, ApplicationSession

CODE = Application.GRANT_AUTHORIZATION_CODE
MACHINE = Application.GRANT_CLIENT_CREDENTIALS
GRANT_NAMES = {"authorization_code": CODE, "client_credentials": MACHINE}
# Fields whose change may narrow what the application's tokens stand for.
NARROWING = frozenset({"enabled", "organization", "allowed_services", "role"})
NARROWING |= {"client_type", "redirect_uris"}


def checksum(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


# --- who may manage which application ------------------------------------------------


def check_manage(actor, *, organization_id) -> None:
    """Admins manage every application; staff those of their own organization (never
    one of no organization); nobody else any."""
    role = getattr(actor, "role", None)
    if role == Role.ADMIN:
        return
    if (
        role == Role.STAFF
        and organization_id is not None
        and organization_id == actor.organization_id
    ):
        return
    raise Forbidden("You may not manage this application.")


# --- registration ----------------------------------------------------------------------


def grant_for(grant_types) -> str:
    """An application is either a sign-in (``authorization_code``, with
    ``refresh_token``) or a machine (``client_credentials``)."""
    names = set(grant_types or ())
    unknown = names - {"authorization_code", "refresh_token", "client_credentials"}
    if unknown:
        raise ValidationError(
            {"grant_types": [f"Unknown grant type {sorted(unknown)[0]!r}."]}
        )
    if "client_credentials" in names and names & {"authorization_code"}:
        raise ValidationError(
            {
                "grant_types": [
                    "An application is a sign-in (authorization_code) or a machine "
                    "(client_credentials), not both: register two."
                ]
            }
        )
    if "client_credentials" in names:
        return MACHINE
    if "authorization_code" in names:
        return CODE
    raise ValidationError(
        {"grant_types": ["Give authorization_code or client_credentials."]}
    )


def validate(app: Application) -> None:
    """The rules of an application beyond its fields' own (every door calls it)."""
    errors: dict[str, list[str]] = {}
    if app.is_machine:
        if app.client_type != Application.CLIENT_CONFIDENTIAL:
            errors["client_type"] = ["A machine client must be confidential."]
    elif not app.redirect_uris.split():
        errors["redirect_uris"] = ["Register at least one redirect URI."]
    if app.role == Role.ADMIN:
        errors["role"] = ["An application cannot act as an administrator."]
    if not isinstance(app.allowed_services, list) or not all(
        isinstance(s, str) for s in app.allowed_services
    ):
        errors["allowed_services"] = ["Give a list of service names."]
    if errors:
        raise ValidationError(errors)
    app.full_clean(exclude=["client_secret", "user"])


def _audit_application(action: str, app: Application, *, request, actor=None, **data):
    """An event about ``app`` (its target), which names it by ``client_id`` first."""
    audit.record(
        action,
        actor=actor,
        target=app,
        request=request,
        data={"client_id": app.client_id, **data},
    )


@transaction.atomic
def application_create(
    *,
    actor,
    name: str,
    client_type: str,
    grant_types,
    redirect_uris=(),
    post_logout_redirect_uris=(),
    skip_consent: bool = False,
    organization=None,
    allowed_services=(),
    role: str = "",
    request=None,
) -> tuple[Application, str | None]:
    """Register an application; returns it and its client secret (None for a public
    client). The secret is stored hashed and never shown again."""
    check_manage(actor, organization_id=getattr(organization, "pk", None))
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    public = client_type == Application.CLIENT_PUBLIC
    app = Application(
        name=name,
        client_type=client_type,
        authorization_grant_type=grant_for(grant_types),
        redirect_uris=" ".join(redirect_uris or ()),
        post_logout_redirect_uris=" ".join(post_logout_redirect_uris or ()),
        skip_authorization=bool(skip_consent),
        organization=organization,
        allowed_services=list(allowed_services or ()),
        role=role or "",
        algorithm=Application.RS256_ALGORITHM,
        client_secret="" if public else secret,
        hash_client_secret=True,
        user=actor if getattr(actor, "pk", None) else None,
    )
    validate(app)
    app.save()  # the secret field hashes itself on save
    _audit_application(
        audit.Action.APPLICATION_CREATED,
        app,
        actor=actor,
        request=request,
        name=app.name,
    )
    return app, None if public else secret


@transaction.atomic
def application_update(*, actor, app: Application, request=None, **fields):
    """Change an application; a change that may narrow it (disabled, moved, fewer
    services, another role or rate, new redirect URIs) ends every token it issued."""
    check_manage(actor, organization_id=app.organization_id)
    if "organization" in fields:
        check_manage(actor, organization_id=getattr(fields["organization"], "pk", None))
    mapping = {
        "skip_consent": "skip_authorization",
        "redirect_uris": "redirect_uris",
        "post_logout_redirect_uris": "post_logout_redirect_uris",
    }
    changed = []
    for name, value in fields.items():
        attr = mapping.get(name, name)
        if attr in ("redirect_uris", "post_logout_redirect_uris"):
            value = " ".join(value or ())
        if attr == "grant_types":
            attr, value = "authorization_grant_type", grant_for(value)
        if getattr(app, attr) != value:
            setattr(app, attr, value)
            changed.append(attr)
    validate(app)
    app.save()
    if set(changed) & (NARROWING | {"authorization_grant_type"}):
        end_application_tokens(app)
    _audit_application(
        audit.Action.APPLICATION_UPDATED,
        app,
        actor=actor,
        request=request,
        changed=sorted(changed),
    )
    return app


@transaction.atomic
def application_delete(*, actor, app: Application, request=None) -> None:
    check_manage(actor, organization_id=app.organization_id)
    end_application_tokens(app)
    _audit_application(
        audit.Action.APPLICATION_DELETED,
        app,
        actor=actor,
        request=request,
        name=app.name,
    )
    app.delete()


# --- ending tokens ------------------------------------------------------------------


def _family_ttl_end(family) -> None:
    revocation.end_family(str(family))


def end_application_tokens(app: Application) -> None:
    """Refuse every token ``app`` issued: each sign-in's family and the machine
    family end (the records every door reads), its rows in django-oauth-toolkit's
    tables go, and machine tokens issued from now on carry a new family."""
    families = set(
        ApplicationSession.objects.filter(application=app).values_list(
            "family", flat=True
        )
    )
    families.add(app.token_family)
    for family in families:
        _family_ttl_end(family)
    get_refresh_token_model().objects.filter(application=app).delete()
    get_access_token_model().objects.filter(application=app).delete()
    ApplicationSession.objects.filter(application=app).delete()
    app.token_family = uuid.uuid4()
    Application.objects.filter(pk=app.pk).update(token_family=app.token_family)


def end_session(family) -> None:
    """End one sign-in at an application (revocation of its token, reuse of a
    rotated refresh token): its access tokens are refused, its refresh tokens too."""
    _family_ttl_end(family)
    get_refresh_token_model().objects.filter(
        token_family=family, revoked__isnull=True
    ).update(revoked=timezone.now())
    get_access_token_model().objects.filter(
        source_refresh_token__token_family=family
    ).delete()


@transaction.atomic
def sign_out(*, user, app: Application, request=None) -> None:
    """RP-initiated logout: the user's sessions at ``app`` end."""
    for session in ApplicationSession.objects.filter(user=user, application=app):
        end_session(session.family)
        session.delete()
    audit.record(
        audit.Action.APPLICATION_SIGNED_OUT,
        actor=user,
        target=user,
        request=request,
        data={"client_id": app.client_id},
    )


def refresh_refused(*, refresh_token: str, client) -> None:
    """A refresh token was refused. When it was revoked (rotated away, or its
    session ended), its whole session ends in the records the doors read too:
    django-oauth-toolkit's reuse detection has revoked the family's rows already."""
    rt = (
        get_refresh_token_model()
        .objects.filter(token_checksum=checksum(refresh_token))
        .exclude(revoked=None)
        .first()
    )
    if rt is None or rt.token_family is None:
        return
    with transaction.atomic():
        end_session(rt.token_family)
        audit.record(
            audit.Action.TOKEN_REUSE_DETECTED,
            target=rt.user,
            data={"client_id": getattr(client, "client_id", ""), "provider": True},
        )


def machine_token_issued(*, app: Application, claims: dict, request=None) -> None:
    _audit_application(
        audit.Action.APPLICATION_TOKEN_ISSUED,
        app,
        request=request,
        jti=claims.get("jti", ""),
    )


def machine_token_refused(*, app: Application, reason: str, request=None) -> None:
    _audit_application(
        audit.Action.APPLICATION_TOKEN_REFUSED, app, request=request, reason=reason
    )
