"""Fixtures for the OpenID provider: RS256 keys, registered applications and a
portal session that goes through the authorization code flow with PKCE."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from accounts.oidc import services
from core.roles import Role
from tests.signing_keys import use_signing_keys

REDIRECT = "https://app.example.com/callback"


@pytest.fixture
def rs256(settings, tmp_path):
    """ID tokens need an RS256 key: the key ring's, with XENX_JWT_ALGORITHM=RS256."""
    return use_signing_keys(settings, tmp_path / "keys", "RS256")


@pytest.fixture
def register(make_user):
    """register(**fields) → (Application, secret): registered by an admin."""

    def make(**fields):
        admin = fields.pop("actor", None) or make_user(Role.ADMIN)
        fields.setdefault("name", "Tax planner")
        fields.setdefault("client_type", "confidential")
        fields.setdefault("grant_types", ["authorization_code", "refresh_token"])
        if "client_credentials" not in fields["grant_types"]:
            fields.setdefault("redirect_uris", [REDIRECT])
        return services.application_create(actor=admin, **fields)

    return make


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Flow:
    """The authorization code flow in a Django test client signed in as ``user``."""

    def __init__(
        self, user, app, *, redirect_uri=REDIRECT, scope="openid email profile"
    ):
        self.client = Client()
        self.client.force_login(user, backend="accounts.backends.EmailBackend")
        self.app = app
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.verifier, self.challenge = pkce_pair()
        self.nonce = secrets.token_urlsafe(8)
        self.state = secrets.token_urlsafe(8)

    def authorize_params(self, **overrides):
        params = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides):
        return self.client.get(
            "/portal/authorize?" + urlencode(self.authorize_params(**overrides))
        )

    def consent(self, **overrides):
        """GET the consent page, then POST "Allow": the redirect's query."""
        page = self.authorize(**overrides)
        if page.status_code == 302:
            return page
        assert page.status_code == 200, page.content[:400]
        form = {**self.authorize_params(**overrides), "allow": "Allow"}
        return self.client.post("/portal/authorize", form)

    def code(self, **overrides):
        response = self.consent(**overrides)
        assert response.status_code == 302, response.content[:400]
        query = parse_qs(urlsplit(response["Location"]).query)
        assert query["state"] == [self.state]
        return query["code"][0]

    def exchange(self, code, *, secret=None, verifier=..., **extra):
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.app.client_id,
            "code_verifier": self.verifier if verifier is ... else verifier,
            **extra,
        }
        if secret:
            data["client_secret"] = secret
        data = {k: v for k, v in data.items() if v is not None}
        return Client().post("/oauth/token", data)
