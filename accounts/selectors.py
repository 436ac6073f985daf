"""Reads about accounts."""

from django.contrib.auth import get_user_model
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice


def user_has_confirmed_totp(user) -> bool:
    """Memoised on the instance (the writes that change it reset the memo)."""
    cached = getattr(user, "_xenx_mfa_enabled", None)
    if cached is None:
        cached = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        user._xenx_mfa_enabled = cached
    return cached


def user_uid(user) -> str:
    """The user id as it appears in emailed links."""
    return urlsafe_base64_encode(force_bytes(user.pk))


def user_from_uid(uid):
    """The user of an emailed link's ``uid``, or None."""
    if not isinstance(uid, str) or len(uid) > 64:
        return None
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    if not 0 < pk < 2**63:  # a database integer, or no such user
        return None
    return get_user_model().objects.filter(pk=pk).first()
