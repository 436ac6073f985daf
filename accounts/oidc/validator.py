"""django-oauth-toolkit's request validator with XenX's rules (its
``OAUTH2_VALIDATOR_CLASS``): the organization rule, the application session (family,
``auth_time``, ``amr``), ID tokens signed RS256 with the key ring's keys, and the
revocation records checked on every token the provider's own endpoints receive."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid

import jwt
from django.conf import settings
from jwcrypto import jwk
from oauth2_provider.models import get_id_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from core.errors import ApiError, ServiceUnavailable

from .. import policy, revocation, signing
from ..keys import ID_TOKEN_ALG, keyring
from ..models import Application, ApplicationSession
from ..tokens import is_machine_payload
from . import services
from .rules import may_sign_in

logger = logging.getLogger("xenx.oidc")


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def id_token_key():
    """The RS256 key that signs ID tokens now (the configured algorithm's key ring
    when it is RS256, else the RS256 keys ``rotate_signing_key --algorithm RS256``
    added), or None."""
    return keyring.states(ID_TOKEN_ALG).signing


def id_token_verification_key(kid):
    for key in keyring.states(ID_TOKEN_ALG).published:
        if key.kid == kid:
            return key
    return None


def verify_id_token(raw: str, *, verify_exp: bool = True) -> dict | None:
    """An ID token XenX signed (RS256, a published ``kid``), or None: ``alg: none``,
    HS256 with the public key and unknown keys are refused before the signature."""
    try:
        header = jwt.get_unverified_header(raw)
        key = id_token_verification_key(header.get("kid"))
        if header.get("alg") != ID_TOKEN_ALG or key is None:
            return None
        return jwt.decode(
            raw,
            key.public,
            algorithms=[ID_TOKEN_ALG],
            options={"verify_aud": False, "verify_exp": verify_exp},
        )
    except (jwt.InvalidTokenError, TypeError, ValueError):
        return None


class XenxValidator(OAuth2Validator):
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        "role": "profile",
        "org": "profile",
    }

    # --- who may sign in ---------------------------------------------------------

    def validate_user_match(self, id_token_hint, scopes, claims, request):
        return True

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        user = request.user
        if not may_sign_in(user, request.client):
            raise errors.AccessDeniedError(state=request.state, request=request)
        auth = getattr(request, "xenx_auth", None) or {}
        super().save_authorization_code(client_id, code, request, *args, **kwargs)
        ApplicationSession.objects.create(
            user=user,
            application=request.client,
            auth_time=float(auth.get("auth_time") or time.time()),
            amr=list(auth.get("amr") or ["pwd"]),
            code_digest=code_digest(code["code"]),
        )

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        session = ApplicationSession.objects.filter(
            code_digest=code_digest(code), application=client
        ).first()
        if session is None or not may_sign_in(request.user, client):
            return False
        request.xenx_session = session
        return True

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)
        # The session keeps its family; the code cannot lead to it again.
        ApplicationSession.objects.filter(code_digest=code_digest(code)).update(
            code_digest=None
        )

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        ok = super().validate_refresh_token(
            refresh_token, client, request, *args, **kwargs
        )
        rt = getattr(request, "refresh_token_instance", None)
        if not ok:
            services.refresh_refused(refresh_token=refresh_token, client=client)
            return False
        session = ApplicationSession.objects.filter(family=rt.token_family).first()
        if session is None or not may_sign_in(rt.user, client):
            return False
        request.xenx_session = session
        return True

    def _create_refresh_token(
        self, request, refresh_token_code, access_token, previous_refresh_token
    ):
        # The family is the application session's, so that ending the session
        # (the ``fam`` claim of its access tokens) and django-oauth-toolkit's reuse
        # detection speak of the same thing.
        token = super()._create_refresh_token(
            request, refresh_token_code, access_token, previous_refresh_token
        )
        session = getattr(request, "xenx_session", None)
        if previous_refresh_token is None and session is not None:
            token.token_family = session.family
            token.save(update_fields=["token_family"])
        return token

    # --- tokens the provider's endpoints receive ----------------------------------

    def validate_bearer_token(self, token, scopes, request):
        if not super().validate_bearer_token(token, scopes, request):
            return False
        try:
            policy.token_identity(token, door=policy.Door.GATEWAY)
        except ServiceUnavailable:
            raise  # the cache down (core.cache.fail_open): 503, not a bad token
        except ApiError:
            request.oauth2_error = {"error": "invalid_token"}
            return False
        return True

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        """RFC 7009. A user's token ends its whole sign-in (its refresh family and
        every access token of it); a machine's token is denylisted alone."""
        payload = None
        try:
            payload = signing.decode(token)
        except (jwt.InvalidTokenError, ValueError, TypeError):
            payload = None
        client_id = getattr(request.client, "client_id", None)
        family = None
        if payload is not None and payload.get("client_id") == client_id:
            if is_machine_payload(payload):
                revocation.deny_access_token(str(payload["jti"]), float(payload["exp"]))
            else:
                family = payload.get("fam")
        elif payload is None:
            rt = (
                get_refresh_token_model()
                .objects.filter(
                    token_checksum=services.checksum(token),
                    application__client_id=client_id,
                )
                .first()
            )
            family = rt.token_family if rt is not None else None
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        if family:
            services.end_session(family)

    def authenticate_client(self, request, *args, **kwargs):
        ok = super().authenticate_client(request, *args, **kwargs)
        if not ok and request.grant_type == "client_credentials":
            app = Application.objects.filter(
                client_id=str(request.client_id or "")[:255]
            ).first()
            if app is not None:
                services.machine_token_refused(app=app, reason="client authentication")
        return ok

    def save_bearer_token(self, token, request, *args, **kwargs):
        result = super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "client_credentials":
            services.machine_token_issued(
                app=request.client, claims=getattr(request, "xenx_access_claims", {})
            )
        return result

    # --- ID tokens ----------------------------------------------------------------

    def get_oidc_issuer_endpoint(self, request):
        return settings.XENX_JWT_ISSUER

    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "email_verified": bool(user.email_verified),
            "name": user.get_full_name() or user.email,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "role": user.role,
            "org": user.organization_id,
        }

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expires = super().get_id_token_dictionary(token, token_handler, request)
        session = getattr(request, "xenx_session", None)
        if session is not None:
            claims["auth_time"] = int(session.auth_time)
            claims["amr"] = list(session.amr)
        claims["azp"] = request.client.client_id
        return claims, expires

    def finalize_id_token(self, id_token, token, token_handler, request):
        claims, expiration_time = self.get_id_token_dictionary(
            token, token_handler, request
        )
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        key = id_token_key()
        if key is None:
            logger.error("no RS256 key signs ID tokens: run rotate_signing_key")
            raise errors.ServerError(
                description="The provider has no key to sign ID tokens with.",
                request=request,
            )
        raw = jwt.encode(
            id_token, key.private, algorithm=ID_TOKEN_ALG, headers={"kid": key.kid}
        )
        saved = self._save_id_token(id_token["jti"], request, expiration_time)
        request.access_token = saved
        request.id_token = saved
        return raw

    def _get_key_for_token(self, token):
        """The public key of an ID token (RP-initiated logout's ``id_token_hint``)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return None
        key = id_token_verification_key(header.get("kid"))
        if header.get("alg") != ID_TOKEN_ALG or key is None:
            return None
        return jwk.JWK.from_pyca(key.public)

    def _load_id_token(self, token):
        claims = verify_id_token(token)
        if claims is None:
            return None
        try:
            jti = uuid.UUID(str(claims.get("jti")))
        except ValueError:
            return None
        return get_id_token_model().objects.filter(jti=jti).first()
