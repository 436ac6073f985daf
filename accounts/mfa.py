"""TOTP (RFC 6238) and backup codes, on django-otp's TOTPDevice and StaticDevice.

- TOTP: SHA-1, 6 digits, 30 s steps, ±1 step, and a code (or any older one) is accepted
  once: the matched step is stored in ``TOTPDevice.last_t`` under a row lock, so two
  concurrent requests with the same code cannot both pass. django-otp's drift tracking
  is not used (it would widen the window beyond ±1 step of our clock).
- Backup codes: 10 random codes of 10 base32 characters (50 bits), shown once. The
  ``StaticToken.token`` column holds ``HMAC-SHA256(SECRET_KEY, user id + code)``
  truncated to 16 base32 characters (80 bits), never the code: a database dump does not
  reveal them, and the codes carry enough entropy that a keyed fast hash suffices (a slow
  password hash buys nothing here). A code is spent by a single ``DELETE`` whose row count
  decides, so it cannot be used twice even concurrently. Consequence: django-otp's own
  ``StaticDevice.verify_token`` (plain comparison) cannot check them; use
  ``verify_second_factor``.
- Failed codes are throttled per account (``mfa_account`` rate) on top of django-otp's
  exponential back-off per device.
"""

from __future__ import annotations

import base64
import re
import secrets
import time

import segno
from django.db import transaction
from django.utils.crypto import constant_time_compare, salted_hmac
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from auditlog import audit
from core.errors import Forbidden, InvalidMfaCode, ValidationFailed

from . import revocation, throttling, tokens
from .notices import Notice, security_notice
from .passwords import check_current_password
from .selectors import user_has_confirmed_totp

BACKUP_CODE_COUNT = 10
BACKUP_CODE_LENGTH = 10
_TOTP_RE = re.compile(r"^\d{6}$")
_BACKUP_RE = re.compile(r"^[a-z2-7]{10}$")
TOTP_DEVICE_NAME = "Authenticator app"
STATIC_DEVICE_NAME = "Backup codes"


# --- helpers ------------------------------------------------------------------------


def now() -> float:
    """The verifier's clock (the tests freeze it: tests/support/totp.py)."""
    return time.time()


def _normalize(code) -> str:
    if not isinstance(code, str):
        return ""
    return re.sub(r"[\s-]", "", code).lower()


def _hash_backup_code(user, code: str) -> str:
    digest = salted_hmac(
        "xenx.mfa.backup-code", f"{user.pk}:{code}", algorithm="sha256"
    ).digest()
    return base64.b32encode(digest).decode()[:16].lower()


def _format_backup_code(raw: str) -> str:
    return f"{raw[:5]}-{raw[5:]}"


def _new_backup_codes() -> list[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return [
        "".join(secrets.choice(alphabet) for _ in range(BACKUP_CODE_LENGTH))
        for _ in range(BACKUP_CODE_COUNT)
    ]


def _store_backup_codes(user) -> list[str]:
    """Replace the user's backup codes; returns the new codes (the only time they are
    visible)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(
        user=user, name=STATIC_DEVICE_NAME, confirmed=True
    )
    codes = _new_backup_codes()
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=_hash_backup_code(user, c)) for c in codes]
    )
    return [_format_backup_code(c) for c in codes]


def _throttled(device, matches) -> bool:
    """django-otp's throttle around one check of a row-locked ``device``: refused while
    throttled; a match (``matches()`` true) resets it and saves the device, a miss
    counts."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return False
    if matches():
        device.throttle_reset(commit=False)
        device.set_last_used_timestamp(commit=False)
        device.save()
        return True
    device.throttle_increment(commit=True)
    return False


def _verify_totp_device(device: TOTPDevice, code: str) -> bool:
    """RFC 6238 check of ``code`` against a row-locked ``device``; records the step."""

    def matches() -> bool:
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, drift=0)
        totp.time = now()
        if not totp.verify(int(code), tolerance=1, min_t=device.last_t + 1):
            return False
        device.last_t = totp.t()
        return True

    return _throttled(device, matches)


def _verify_totp(user, code: str, *, confirmed: bool = True) -> bool:
    if not _TOTP_RE.match(code):
        return False
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=confirmed)
            .order_by("-id")
            .first()
        )
        if device is None:
            return False
        return _verify_totp_device(device, code)


def _verify_backup_code(user, code: str) -> bool:
    if not _BACKUP_RE.match(code):
        return False
    hashed = _hash_backup_code(user, code)
    with transaction.atomic():
        device = (
            StaticDevice.objects.select_for_update()
            .filter(user=user, confirmed=True)
            .first()
        )
        if device is None:
            return False

        def matches() -> bool:
            match = [
                t.pk
                for t in device.token_set.all()
                if constant_time_compare(t.token, hashed)
            ]
            return (
                bool(match) and StaticToken.objects.filter(pk__in=match).delete()[0] > 0
            )

        return _throttled(device, matches)


# --- reads --------------------------------------------------------------------------


def backup_codes_remaining(user) -> int:
    return StaticToken.objects.filter(device__user=user).count()


def verify_second_factor(*, user, code) -> bool:
    """A TOTP code of the user's confirmed device or one of its backup codes; each is
    accepted once (replay-safe, also under concurrency)."""
    code = _normalize(code)
    if _TOTP_RE.match(code):
        return _verify_totp(user, code)
    return _verify_backup_code(user, code)


def _check_code_or_fail(*, user, code, request, status: int) -> None:
    """Throttled second-factor check for the authenticated MFA endpoints."""
    key = str(user.pk)
    throttling.check(request, "mfa_account", key)
    if not verify_second_factor(user=user, code=code):
        throttling.fail(request, "mfa_account", key)
        audit.record(audit.Action.MFA_FAILED, actor=user, target=user, request=request)
        raise InvalidMfaCode(status=status)


# --- writes -------------------------------------------------------------------------


def totp_begin_enrolment(*, user, password, request=None) -> dict:
    """Start (or restart) enrolment: a new unconfirmed device replaces an earlier
    unconfirmed one. The current ``password`` is required (400 on ``password``,
    throttled per account): a stolen access token or an unattended browser alone must
    not enrol someone else's authenticator. Refused while a confirmed device exists
    (disable it first)."""
    check_current_password(
        user=user, password=password, request=request, field="password"
    )
    return _begin_enrolment(user=user)


@transaction.atomic
def _begin_enrolment(*, user) -> dict:
    if user_has_confirmed_totp(user):
        raise ValidationFailed(
            "Two-factor authentication is already enabled.",
            details={"non_field_errors": ["Disable the current authenticator first."]},
        )
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(
        user=user,
        name=TOTP_DEVICE_NAME,
        confirmed=False,
        step=30,
        digits=6,
        tolerance=1,
        drift=0,
    )
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    uri = device.config_url
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, title="TOTP QR code")
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": qr_svg}


def totp_confirm(
    *, user, code, request=None, spare_session: float | None = None
) -> list[str]:
    """Confirm the pending device with a current code; returns the 10 backup codes.
    Every *other* token and session of the user is revoked (the login now needs MFA);
    the confirming session ``spare_session`` keeps working (README "Identity: login,
    MFA, tokens, audit log")."""
    codes, _ = _totp_confirm(
        user=user, code=code, request=request, spare_session=spare_session
    )
    return codes


def totp_confirm_reissuing(
    *, user, code, request=None, spare_session: float, family: str | None
) -> tuple[list[str], dict]:
    """``totp_confirm`` for an API session: also a fresh pair of the confirming session
    (``mfa: true``, the same ``family``), issued in the confirming transaction so the
    device, the revocation and the pair commit together or not at all."""
    return _totp_confirm(
        user=user,
        code=code,
        request=request,
        spare_session=spare_session,
        reissue={"family": family},
    )


def _totp_confirm(*, user, code, request, spare_session, reissue=None):
    code = _normalize(code)
    key = str(user.pk)
    throttling.check(request, "mfa_account", key)
    if not TOTPDevice.objects.filter(user=user, confirmed=False).exists():
        raise ValidationFailed(
            "No enrolment in progress.",
            details={"code": ["Start the enrolment first (POST /api/auth/mfa/totp)."]},
        )
    if not _verify_totp(user, code, confirmed=False):
        throttling.fail(request, "mfa_account", key)
        audit.record(
            audit.Action.MFA_FAILED,
            actor=user,
            target=user,
            request=request,
            data={"step": "enrolment"},
        )
        raise InvalidMfaCode(status=400)
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("-id")
            .first()
        )
        if device is None:  # a concurrent confirm won
            raise ValidationFailed(details={"code": ["No enrolment in progress."]})
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _store_backup_codes(user)
        revocation.revoke_user_tokens(user, spare_session=spare_session)
        audit.record(audit.Action.MFA_ENABLED, actor=user, target=user, request=request)
        security_notice(user=user, notice=Notice.MFA_ENABLED, request=request)
        issued = None
        if reissue is not None:
            issued = tokens.issue_tokens(
                user,
                mfa=True,
                session_started=spare_session,
                family=reissue["family"],
                request=request,
            )
    user._xenx_mfa_enabled = True
    return codes, issued


def mfa_disable(*, user, code, request=None) -> None:
    """Remove TOTP and backup codes, after a TOTP or backup code. Members of an
    organization that requires MFA may not."""
    if not user_has_confirmed_totp(user):
        raise ValidationFailed(
            "Two-factor authentication is not enabled.",
            details={"non_field_errors": ["Two-factor authentication is not enabled."]},
        )
    org = user.organization
    if org is not None and org.mfa_required:
        raise Forbidden("Your organization requires two-factor authentication.")
    _check_code_or_fail(user=user, code=code, request=request, status=400)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        audit.record(
            audit.Action.MFA_DISABLED, actor=user, target=user, request=request
        )
        security_notice(user=user, notice=Notice.MFA_DISABLED, request=request)
    user._xenx_mfa_enabled = False


def backup_codes_regenerate(*, user, code, request=None) -> list[str]:
    """Replace every backup code, after a TOTP or backup code."""
    if not user_has_confirmed_totp(user):
        raise ValidationFailed(
            "Two-factor authentication is not enabled.",
            details={"non_field_errors": ["Two-factor authentication is not enabled."]},
        )
    _check_code_or_fail(user=user, code=code, request=request, status=400)
    with transaction.atomic():
        codes = _store_backup_codes(user)
        audit.record(
            audit.Action.BACKUP_CODES_REGENERATED,
            actor=user,
            target=user,
            request=request,
        )
        security_notice(user=user, notice=Notice.BACKUP_CODES_REPLACED, request=request)
    return codes
