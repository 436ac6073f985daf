"""The provider driven by clients nobody here wrote: Authlib's OAuth 2.0 / OpenID
Connect client against a live XenX, the portal sign-in done by Playwright in Debian's
Chromium, the ID token verified by PyJWT's PyJWKClient from the published JWKS only.
One live server for the module."""

import base64
import json
import re
import secrets
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings as django_settings

from accounts.oidc import services
from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD
from tests.portal.conftest import totp_code
from tests.portal.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PORTS,
    _ensure_role_groups,
)
from tests.signing_keys import use_signing_keys
from tests.support.ports import free_port

RP = "https://rp.example.com"
_sessions: list = []


def authlib_client(*args, **kwargs) -> OAuth2Session:
    """An Authlib client, closed after the test (its kept-alive connection would
    hold a live-server thread)."""
    client = OAuth2Session(*args, **kwargs)
    _sessions.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_sessions():
    yield
    while _sessions:
        _sessions.pop().close()


REDIRECT = f"{RP}/callback"
LOGGED_OUT = f"{RP}/bye"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),  # the live server sees committed rows
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def server():
    from pytest_django.live_server_helper import LiveServer

    live = LiveServer(f"127.0.0.1:{free_port(PORTS)}")
    yield live
    _join_request_threads()
    live.stop()


def _join_request_threads():
    """Let request threads of the closed browser's connections finish before the
    server (and its shared database connection) goes away."""
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(timeout=10)


@pytest.fixture
def xenx(server, settings, tmp_path):
    """The live server's URL as the issuer, with an RS256 key ring."""
    _ensure_role_groups()
    settings.XENX_JWT_ISSUER = server.url
    use_signing_keys(settings, tmp_path / "keys", "RS256")
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    return server.url


@pytest.fixture
def page(xenx, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = chromium.new_page()
        # The relying party is not running: its URLs are answered here, recorded.
        page.visited = []

        def relying_party(route):
            page.visited.append(route.request.url)
            route.fulfill(status=200, body="relying party")

        page.route(f"{RP}/**", relying_party)
        # Chromium does not hand a redirect of a typed navigation to the route: the
        # requests themselves are recorded too.
        page.requested = []
        page.on("request", lambda request: page.requested.append(request.url))
        yield page
        chromium.close()
    from django.db import connections

    connections.close_all()


def sign_in(page, url, user, *, totp=False, consent=True):
    """Follow ``url`` in the browser through the portal's sign-in (and consent):
    the URL the relying party was sent back to."""
    page.goto(url)
    page.wait_for_url(re.compile(r".*/portal/login.*"))
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("main button[type=submit]")
    if totp:
        page.wait_for_url(re.compile(r".*/portal/login/verify.*"))
        page.fill("input[name=code]", totp_code(user, offset_steps=1))
        page.click("main button[type=submit]")
    if consent:
        page.wait_for_selector("button[name=allow]")
        page.click("button[name=allow]")
    page.wait_for_function("() => true")  # the form's navigation has started
    for _ in range(100):  # the redirect to the relying party (a route or a request)
        back = [u for u in page.visited + page.requested if u.startswith(REDIRECT)]
        if back:
            return back[-1]
        page.wait_for_timeout(100)
    raise AssertionError(f"never sent back to the relying party: {page.url}")


def goto_allowing_unreachable(page, url):
    """Navigate; a redirect to the relying party (not running) may fail to load."""
    from playwright.sync_api import Error

    try:
        page.goto(url)
    except Error as exc:
        assert "ERR_NAME_NOT_RESOLVED" in str(exc), exc


def register(**fields):
    from accounts.models import User

    admin = User.objects.create_superuser(f"admin-{secrets.token_hex(4)}@example.com")
    return services.application_create(
        actor=admin,
        name="Tax planner",
        client_type=fields.pop("client_type", "confidential"),
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[REDIRECT],
        post_logout_redirect_uris=[LOGGED_OUT],
        **fields,
    )


def test_authlib_code_pkce_refresh_userinfo_revoke_introspect_end_session(
    xenx, page, make_user, enrol_totp
):
    user = make_user(Role.CPA, first_name="Casey", last_name="Accountant")
    enrol_totp(user)
    app, secret = register()
    meta = requests.get(f"{xenx}/.well-known/openid-configuration", timeout=5).json()
    client = authlib_client(
        app.client_id,
        secret,
        scope="openid email profile",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = sign_in(page, url, user, totp=True)
    tokens = client.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )

    # The ID token, verified from the published JWKS only.
    signing_key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(
        tokens["id_token"]
    )
    claims = jwt.decode(
        tokens["id_token"],
        signing_key.key,
        algorithms=["RS256"],
        audience=app.client_id,
        issuer=meta["issuer"],
    )
    assert claims["nonce"] == nonce
    assert claims["sub"] == str(user.pk)
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["email"] == user.email and claims["name"] == "Casey Accountant"
    assert claims["role"] == "cpa" and claims["org"] == user.organization_id

    profile = client.get(meta["userinfo_endpoint"]).json()
    assert profile["sub"] == str(user.pk) and profile["email"] == user.email

    old_refresh = tokens["refresh_token"]
    refreshed = client.refresh_token(meta["token_endpoint"])
    assert refreshed["refresh_token"] != old_refresh
    assert client.get(meta["userinfo_endpoint"]).status_code == 200

    seen = client.introspect_token(
        meta["introspection_endpoint"], token=refreshed["access_token"]
    ).json()
    assert seen["active"] is True and seen["client_id"] == app.client_id

    assert (
        client.revoke_token(
            meta["revocation_endpoint"], token=refreshed["refresh_token"]
        ).status_code
        == 200
    )
    gone = client.introspect_token(
        meta["introspection_endpoint"], token=refreshed["access_token"]
    ).json()
    assert gone == {"active": False}

    # RP-initiated logout ends the portal session and sends the user back.
    query = urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": LOGGED_OUT,
            "state": "s1",
        }
    )
    goto_allowing_unreachable(page, f"{meta['end_session_endpoint']}?{query}")
    (back,) = [u for u in page.requested if u.startswith(LOGGED_OUT)]
    assert parse_qs(urlsplit(back).query)["state"] == ["s1"]
    session = {c["name"]: c["value"] for c in page.context.cookies()}
    portal = requests.get(
        f"{xenx}/portal/", cookies=session, allow_redirects=False, timeout=5
    )
    assert portal.status_code == 302 and "/portal/login" in portal.headers["Location"]


def test_the_readme_client_runs_as_written(xenx, page, make_user):
    readme = Path(django_settings.BASE_DIR, "README.md").read_text()
    (block,) = re.findall(
        r"```python\n(.*?)```",
        readme.split("## Sign in with XenX")[1].split("\n## ")[0],
        re.S,
    )
    user = make_user(Role.CLIENT)
    app, secret = register(skip_consent=True)
    namespace = {
        "XENX": xenx,
        "CLIENT_ID": app.client_id,
        "CLIENT_SECRET": secret,
        "REDIRECT_URI": REDIRECT,
        "browse": lambda url: sign_in(page, url, user, consent=False),
    }
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our README
    namespace["client"].close()
    assert namespace["profile"]["email"] == user.email
    assert "id_token" in namespace["tokens"]


def test_public_client_with_authlib(xenx, page, make_user):
    user = make_user(Role.CLIENT)
    app, secret = register(client_type="public")
    assert secret is None
    meta = requests.get(f"{xenx}/.well-known/openid-configuration", timeout=5).json()
    client = authlib_client(
        app.client_id,
        None,
        scope="openid",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    url, _ = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n"
    )
    callback = sign_in(page, url, user)
    tokens = client.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    assert tokens["token_type"].lower() == "bearer"


def _b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_alg_tricks_on_id_tokens_are_refused(xenx, page, make_user):
    """An ID token re-signed with alg none, or HS256 with the published public key as
    the secret, is refused by XenX (end-session's id_token_hint) and by PyJWKClient."""
    from cryptography.hazmat.primitives import serialization

    from accounts.keys import keyring
    from accounts.oidc.validator import verify_id_token

    user = make_user(Role.CLIENT)
    app, secret = register(skip_consent=True)
    meta = requests.get(f"{xenx}/.well-known/openid-configuration", timeout=5).json()
    client = authlib_client(
        app.client_id,
        secret,
        scope="openid",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, _ = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n"
    )
    tokens = client.fetch_token(
        meta["token_endpoint"],
        authorization_response=sign_in(page, url, user, consent=False),
        code_verifier=verifier,
    )
    genuine = tokens["id_token"]
    header, payload, _ = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    none_token = f"{_b64({'alg': 'none', 'kid': kid})}.{_b64(claims)}."
    public_pem = keyring.states("RS256").signing.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'kid': kid, 'typ': 'JWT'})}.{_b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    hs_token = f"{signing_input}.{_b64(mac)}"

    assert verify_id_token(genuine) is not None
    for forged in (none_token, hs_token):
        assert verify_id_token(forged) is None
        with pytest.raises((jwt.PyJWKClientError, jwt.InvalidTokenError)):
            key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(forged)
            jwt.decode(forged, key.key, algorithms=["RS256"], audience=app.client_id)
        # end-session with the forged hint is an error page, not a logout
        goto_allowing_unreachable(
            page,
            f"{meta['end_session_endpoint']}?"
            + urlencode(
                {"id_token_hint": forged, "post_logout_redirect_uri": LOGGED_OUT}
            ),
        )
        assert not any(u.startswith(LOGGED_OUT) for u in page.requested)
        assert "cannot continue" in page.content()
