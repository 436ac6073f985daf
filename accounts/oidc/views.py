"""The provider's machine endpoints (token, revocation, introspection, userinfo):
django-oauth-toolkit's views, answering errors as RFC 6749 and OpenID Connect say.
The pages a person sees (authorization, consent, end-session) are the portal's."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot

from core.errors import ApiError, ServiceUnavailable, response_for_exception

from .. import policy


class _OutageIs503:
    """The cache down while a token's records are read (``core.cache.fail_open``): 503
    ``service_unavailable`` with the one error body, as on every token-authenticated
    call (README "Failure policy"), not an answer about the token. Exempt from CSRF
    and sign-in as django-oauth-toolkit's own ``dispatch`` is (``as_view`` reads the
    exemptions from the outermost one)."""

    @method_decorator(csrf_exempt)
    @method_decorator(login_not_required)
    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except ServiceUnavailable as exc:
            return response_for_exception(request, exc)


class IntrospectView(_OutageIs503, dot.IntrospectTokenView):
    """RFC 7662 for confidential clients (HTTP Basic or the body). A token the doors
    would refuse (its user deactivated, its session ended, a password changed) is
    ``active: false`` here too."""

    @staticmethod
    def get_token_response(token_value=None):
        response = dot.IntrospectTokenView.get_token_response(token_value)
        if response.status_code != 200 or b'"active": true' not in response.content:
            return response
        try:
            identity = policy.token_identity(token_value, door=policy.Door.GATEWAY)
        except ServiceUnavailable:
            raise
        except ApiError:
            return JsonResponse({"active": False})
        return identity_response(response, identity)


def identity_response(response, identity):
    data = json.loads(response.content)
    payload = identity.payload
    data.update(
        {
            "token_type": "Bearer",
            "sub": payload.get("sub") or str(identity.user_id),
            "iat": payload.get("iat"),
            "iss": payload.get("iss"),
            "jti": payload.get("jti"),
        }
    )
    response.content = json.dumps(data)
    return response


GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})


class TokenView(dot.TokenView):
    """django-oauth-toolkit's token endpoint for the grants XenX offers (its device
    grant answered a request without ``device_code`` with a 500); an error raised
    while the ID token is made (no RS256 key) gets a JSON type oauthlib omits."""

    def post(self, request, *args, **kwargs):
        if request.POST.get("grant_type") not in GRANT_TYPES:
            return JsonResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Use authorization_code, refresh_token or "
                    "client_credentials.",
                },
                status=400,
            )
        response = super().post(request, *args, **kwargs)
        if response.content[:1] == b"{" and "json" not in response.get(
            "Content-Type", ""
        ):
            response["Content-Type"] = "application/json"
        return response


token_view = TokenView.as_view()
revoke_view = dot.RevokeTokenView.as_view()
introspect_view = IntrospectView.as_view()


class UserInfoView(_OutageIs503, dot.UserInfoView):
    pass


userinfo_view = UserInfoView.as_view()
