"""Reads about accounts."""

from django_otp.plugins.otp_totp.models import TOTPDevice


def user_has_confirmed_totp(user) -> bool:
    cached = getattr(user, "_xenx_mfa_enabled", None)
    if cached is None:
        cached = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        user._xenx_mfa_enabled = cached
    return cached
