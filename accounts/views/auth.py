"""/api/auth/...: one thin view per operation; the work is in the services (``login``,
``token_services``, ``passwords``, ``registration``, ``services``) and
``mfa``."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import (
    email_change,
    login,
    mfa,
    passwords,
    policy,
    registration,
    token_services,
)
from ..auth_serializers import (
    BackupCodesSerializer,
    CodeSerializer,
    EmailChangeSerializer,
    ErrorSerializer,
    LoginResponseSerializer,
    LoginSerializer,
    MfaChallengeSerializer,
    MfaVerifySerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
    PasswordSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenInputSerializer,
    TokenPairSerializer,
    TotpConfirmResponseSerializer,
    TotpEnrolmentSerializer,
)
from ..serializers import UserSerializer
from ..services import user_update

TAG = ["auth"]


def _errors(*statuses: int) -> dict:
    return {s: OpenApiResponse(ErrorSerializer) for s in statuses}


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _login_body(result: dict) -> dict:
    if result.get("mfa_required"):
        return result
    return {**result, "user": UserSerializer(result["user"]).data}


class PublicView(APIView):
    """No authentication: a stale Bearer header must not break login or refresh."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


class RegisterView(PublicView):
    @extend_schema(
        tags=TAG,
        request=RegisterSerializer,
        responses={201: UserSerializer, **_errors(400, 403, 429)},
    )
    def post(self, request):
        data = _valid(RegisterSerializer, request)
        user = registration.register(request=request._request, **data)
        return Response(UserSerializer(user).data, status=201)


class VerifyEmailView(PublicView):
    @extend_schema(
        tags=TAG,
        request=TokenInputSerializer,
        responses={204: None, **_errors(400)},
    )
    def post(self, request):
        data = _valid(TokenInputSerializer, request)
        registration.verify_email(request=request._request, token=data["token"])
        return Response(status=204)


LOGIN_RESPONSE = PolymorphicProxySerializer(
    component_name="LoginResult",
    serializers=[LoginResponseSerializer, MfaChallengeSerializer],
    resource_type_field_name=None,
)


class LoginView(PublicView):
    @extend_schema(
        tags=TAG,
        request=LoginSerializer,
        responses={200: LOGIN_RESPONSE, **_errors(400, 401, 429)},
        description="Password login. With a confirmed TOTP device the answer is an "
        "MFA challenge (`mfa_required`, `mfa_token`) instead of tokens.",
    )
    def post(self, request):
        data = _valid(LoginSerializer, request)
        result = login.login_password_step(
            request=request._request, email=data["email"], password=data["password"]
        )
        return Response(_login_body(result))


class MfaVerifyView(PublicView):
    @extend_schema(
        tags=TAG,
        request=MfaVerifySerializer,
        responses={200: LoginResponseSerializer, **_errors(400, 401, 429)},
    )
    def post(self, request):
        data = _valid(MfaVerifySerializer, request)
        result = login.login_mfa_step(
            request=request._request, mfa_token=data["mfa_token"], code=data["code"]
        )
        return Response(_login_body(result))


def _pair(issued: dict) -> dict:
    return {
        "access": issued["access"],
        "refresh": issued["refresh"],
        "token_type": "Bearer",
        "expires_in": issued["expires_in"],
    }


class RefreshView(PublicView):
    @extend_schema(
        tags=TAG,
        request=RefreshSerializer,
        responses={200: TokenPairSerializer, **_errors(400, 401)},
    )
    def post(self, request):
        data = _valid(RefreshSerializer, request)
        issued = token_services.token_refresh(
            request=request._request, refresh=data["refresh"]
        )
        return Response(_pair(issued))


class LogoutView(APIView):
    @extend_schema(
        tags=TAG, request=RefreshSerializer, responses={204: None, **_errors(400, 401)}
    )
    def post(self, request):
        data = _valid(RefreshSerializer, request)
        token_services.logout(
            request=request._request,
            user=request.user,
            identity=request.auth,
            refresh=data["refresh"],
        )
        return Response(status=204)


class LogoutAllView(APIView):
    @extend_schema(tags=TAG, request=None, responses={204: None, **_errors(401)})
    def post(self, request):
        token_services.logout_all(request=request._request, user=request.user)
        return Response(status=204)


class MeUpdateSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class MeView(APIView):
    """The caller's own profile. Role, organization and email are not writable here."""

    @extend_schema(tags=TAG, responses={200: UserSerializer, **_errors(401)})
    def get(self, request):
        return Response(UserSerializer(request.user).data)

    @extend_schema(
        tags=TAG,
        request=MeUpdateSerializer,
        responses={200: UserSerializer, **_errors(400, 401)},
    )
    def patch(self, request):
        data = _valid(MeUpdateSerializer, request)
        user = user_update(
            user=request.user, actor=request.user, request=request._request, **data
        )
        return Response(UserSerializer(user).data)


class PasswordChangeView(APIView):
    @extend_schema(
        tags=TAG,
        request=PasswordChangeSerializer,
        responses={200: TokenPairSerializer, **_errors(400, 401, 429)},
        description="Revokes every other token of the user; use the returned pair.",
    )
    def post(self, request):
        data = _valid(PasswordChangeSerializer, request)
        issued = passwords.password_change(
            user=request.user,
            old_password=data["old_password"],
            new_password=data["new_password"],
            request=request._request,
            mfa=request.auth.mfa,
        )
        return Response(_pair(issued))


class PasswordResetView(PublicView):
    @extend_schema(
        tags=TAG,
        request=PasswordResetSerializer,
        responses={202: None, **_errors(400, 429)},
        description="Always 202, whether or not the email is known.",
    )
    def post(self, request):
        data = _valid(PasswordResetSerializer, request)
        passwords.password_reset_request(request=request._request, email=data["email"])
        return Response(status=202)


class PasswordResetConfirmView(PublicView):
    @extend_schema(
        tags=TAG,
        request=PasswordResetConfirmSerializer,
        responses={204: None, **_errors(400)},
    )
    def post(self, request):
        data = _valid(PasswordResetConfirmSerializer, request)
        passwords.password_reset_confirm(request=request._request, **data)
        return Response(status=204)


class BodyOnDeleteSchema(AutoSchema):
    """DELETE /api/auth/mfa/totp takes a body (the code); drf-spectacular documents
    bodies only for POST/PUT/PATCH unless told."""

    def _get_request_body(self, direction="request"):
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"


class TotpView(APIView):
    schema = BodyOnDeleteSchema()

    @extend_schema(
        tags=TAG,
        request=PasswordSerializer,
        responses={201: TotpEnrolmentSerializer, **_errors(400, 401, 429)},
        description="Start (or restart) TOTP enrolment with an unconfirmed device. "
        "The current password is required (400 on `password` when missing or wrong, "
        "throttled per account).",
    )
    def post(self, request):
        data = _valid(PasswordSerializer, request)
        started = mfa.totp_begin_enrolment(
            user=request.user, password=data["password"], request=request._request
        )
        return Response(started, status=201)

    @extend_schema(
        tags=TAG,
        request=CodeSerializer,
        responses={204: None, **_errors(400, 401, 403, 429)},
        description="Disable MFA: removes TOTP and backup codes. `code` is a TOTP or "
        "backup code.",
    )
    def delete(self, request):
        data = _valid(CodeSerializer, request)
        mfa.mfa_disable(user=request.user, code=data["code"], request=request._request)
        return Response(status=204)


class TotpConfirmView(APIView):
    @extend_schema(
        tags=TAG,
        request=CodeSerializer,
        responses={200: TotpConfirmResponseSerializer, **_errors(400, 401, 429)},
        description="Confirms the device and returns 10 backup codes (shown once). "
        "Every other token of the user is revoked; the calling session keeps "
        "working, and a fresh pair of it (with `mfa: true`) is returned with the codes.",
    )
    def post(self, request):
        data = _valid(CodeSerializer, request)
        session = policy.current_session(request)
        codes, issued = mfa.totp_confirm_reissuing(
            user=request.user,
            code=data["code"],
            request=request._request,
            spare_session=session,
            family=request.auth.payload.get("fam"),  # the same session continues
        )
        return Response({"backup_codes": codes, **_pair(issued)})


class BackupCodesView(APIView):
    @extend_schema(
        tags=TAG,
        request=CodeSerializer,
        responses={200: BackupCodesSerializer, **_errors(400, 401, 429)},
    )
    def post(self, request):
        data = _valid(CodeSerializer, request)
        codes = mfa.backup_codes_regenerate(
            user=request.user, code=data["code"], request=request._request
        )
        return Response({"backup_codes": codes})


class EmailChangeView(APIView):
    @extend_schema(
        tags=TAG,
        request=EmailChangeSerializer,
        responses={202: None, **_errors(400, 401, 429)},
        description="Mails a confirmation link to `new_email` and a notice to the "
        "current address. The current password is required. The same 202 whether "
        "or not the new address already has an account.",
    )
    def post(self, request):
        data = _valid(EmailChangeSerializer, request)
        email_change.email_change_request(
            user=request.user,
            password=data["password"],
            new_email=data["new_email"],
            request=request._request,
        )
        return Response(status=202)


class EmailConfirmView(PublicView):
    @extend_schema(
        tags=TAG,
        request=TokenInputSerializer,
        responses={200: UserSerializer, **_errors(400)},
        description="Switch to the new address of the mailed link (no Bearer "
        "needed); every token and session of the user is revoked.",
    )
    def post(self, request):
        data = _valid(TokenInputSerializer, request)
        user = email_change.email_change_confirm(
            token=data["token"], request=request._request
        )
        return Response(UserSerializer(user).data)
