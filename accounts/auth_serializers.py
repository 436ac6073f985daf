"""Request and response shapes of /api/auth/ (also what the OpenAPI schema shows)."""

from rest_framework import serializers

from .serializers import UserSerializer


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()
    request_id = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The one error body (README "Conventions")."""

    error = ErrorDetailSerializer()


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    invitation = serializers.CharField(max_length=256, required=False, allow_blank=True)


class TokenInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=512)


class LoginSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until `access` expires.")


class LoginResponseSerializer(TokenPairSerializer):
    user = UserSerializer()


class MfaChallengeSerializer(serializers.Serializer):
    mfa_required = serializers.BooleanField()
    mfa_token = serializers.CharField(
        help_text="Signed, 5 minutes, single use; only for /api/auth/mfa/verify."
    )
    methods = serializers.ListField(child=serializers.CharField())


class MfaVerifySerializer(serializers.Serializer):
    mfa_token = serializers.CharField(max_length=2048)
    code = serializers.CharField(max_length=64, help_text="TOTP code or backup code.")


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=256, trim_whitespace=False)
    new_password = serializers.CharField(max_length=256, trim_whitespace=False)


class PasswordResetSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)


class PasswordResetConfirmSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=256)
    new_password = serializers.CharField(max_length=256, trim_whitespace=False)


class PasswordSerializer(serializers.Serializer):
    password = serializers.CharField(
        max_length=256, trim_whitespace=False, help_text="The current password."
    )


class EmailChangeSerializer(PasswordSerializer):
    new_email = serializers.EmailField(max_length=254)


class CodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)


class TotpEnrolmentSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="Base32 secret, for manual entry.")
    otpauth_uri = serializers.CharField()
    qr_svg = serializers.CharField(help_text="An SVG image of the otpauth URI.")


class BackupCodesSerializer(serializers.Serializer):
    backup_codes = serializers.ListField(
        child=serializers.CharField(), min_length=10, max_length=10
    )


class TotpConfirmResponseSerializer(BackupCodesSerializer):
    """Backup codes, plus a fresh token pair of the same session with ``mfa: true``
    (this session has just shown the password and a code); the token used for this
    request keeps working with its own claims, every other session's are revoked."""

    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
