"""``/.well-known/jwks.json`` and ``/.well-known/openid-configuration``: what a service
needs to verify XenX's tokens and identity assertions by itself (README "Identity")."""

from django.conf import settings
from django.utils.cache import patch_cache_control
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ..keys import JWKS_MAX_AGE, keyring

TAG = ["keys"]
CLAIMS = ["sub", "iss", "aud", "exp", "iat", "email", "role", "org", "mfa"]


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
                    "id_token_signing_alg_values_supported": serializers.ListField(
                        child=serializers.CharField()
                    ),
                    "subject_types_supported": serializers.ListField(
                        child=serializers.CharField()
                    ),
                    "claims_supported": serializers.ListField(
                        child=serializers.CharField()
                    ),
                },
            )
        },
        description="A minimal discovery document: the issuer (`iss` of identity "
        "assertions) and the JWKS URL.",
    )
    def get(self, request):
        return self.cached(
            {
                "issuer": issuer(),
                "jwks_uri": jwks_uri(),
                "id_token_signing_alg_values_supported": [settings.XENX_JWT_ALGORITHM],
                "subject_types_supported": ["public"],
                "claims_supported": CLAIMS,
            }
        )
