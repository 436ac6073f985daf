"""``/.well-known/jwks.json`` and ``/.well-known/openid-configuration``: what a service
needs to verify XenX's tokens and identity assertions by itself (README "Identity")."""

from django.conf import settings
from django.urls import reverse
from django.utils.cache import patch_cache_control
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ..keys import ID_TOKEN_ALG, JWKS_MAX_AGE, is_asymmetric, keyring

TAG = ["keys"]
CLAIMS = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "amr",
    "email",
    "email_verified",
    "name",
    "given_name",
    "family_name",
    "role",
    "org",
    "mfa",
]


def issuer() -> str:
    return settings.XENX_JWT_ISSUER


def jwks_uri() -> str:
    return f"{issuer()}/.well-known/jwks.json"


class _PublicDocument(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def cached(self, body: dict) -> Response:
        response = Response(body)
        patch_cache_control(response, public=True, max_age=JWKS_MAX_AGE)
        return response


class JwksView(_PublicDocument):
    @extend_schema(
        tags=TAG,
        responses={
            200: inline_serializer(
                "Jwks", {"keys": serializers.ListField(child=serializers.DictField())}
            )
        },
        description="The public keys of XenX's tokens and `X-XenX-Identity` "
        "assertions (RFC 7517): the key that signs now, the next one (published "
        "before it signs) and older ones until every token they signed has expired. "
        "Empty with HS256. Cacheable for 5 minutes.",
    )
    def get(self, request):
        return self.cached(keyring.jwks())


class OpenIdConfigurationView(_PublicDocument):
    @extend_schema(
        tags=TAG,
        responses={
            200: inline_serializer(
                "OpenIdConfiguration",
                {
                    "issuer": serializers.CharField(),
                    "jwks_uri": serializers.CharField(),
                    "authorization_endpoint": serializers.CharField(),
                    "token_endpoint": serializers.CharField(),
                    "userinfo_endpoint": serializers.CharField(),
                    "end_session_endpoint": serializers.CharField(),
                    "revocation_endpoint": serializers.CharField(),
                    "introspection_endpoint": serializers.CharField(),
                    "id_token_signing_alg_values_supported": serializers.ListField(
                        child=serializers.CharField()
                    ),
                },
            )
        },
        description='OpenID Connect discovery (README "Sign in with XenX"): the '
        "issuer, the JWKS URL and every endpoint of the provider, with what they "
        "support.",
    )
    def get(self, request):
        return self.cached(discovery())


def discovery() -> dict:
    base = issuer()
    alg = settings.XENX_JWT_ALGORITHM
    algs = [ID_TOKEN_ALG] + (
        [alg] if is_asymmetric(alg) and alg != ID_TOKEN_ALG else []
    )
    return {
        "issuer": base,
        "jwks_uri": jwks_uri(),
        "authorization_endpoint": base + reverse("portal:authorize"),
        "token_endpoint": base + reverse("oidc:token"),
        "userinfo_endpoint": base + reverse("oidc:userinfo"),
        "end_session_endpoint": base + reverse("portal:end-session"),
        "revocation_endpoint": base + reverse("oidc:revoke"),
        "introspection_endpoint": base + reverse("oidc:introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
        ],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "id_token_signing_alg_values_supported": algs,
        "subject_types_supported": ["public"],
        "claims_supported": CLAIMS,
    }
