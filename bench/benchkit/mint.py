"""Create ``N`` client users and write one access token per line (run by the harness).

The users are made in one ``bulk_create`` (no password: they never log in) and their
tokens minted with ``accounts.tokens.issue_tokens``, as a login would, without going
through the login throttle. Run with XenX's environment from the repository root:
``python bench/benchkit/mint.py N FILE [--provider FILE] [--machines FILE SERVICE]``.

``--provider``: the same users signed in at one registered application (authorization
code): an application session each, as the code's authorization records it
(``accounts.oidc.validator``), and the access token the token endpoint would return,
made by the provider's own ``ACCESS_TOKEN_GENERATOR`` (``accounts.oidc.tokens``).
``--machines``: ``N`` machine clients (client credentials) allowed ``SERVICE`` with the
``client`` role, registered through the registration service, and one token of each
from the same generator. The tokens endpoint itself (PKCE, client authentication, its
rows in django-oauth-toolkit's tables) is left out: the gateway reads none of it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SIGN_IN_SCOPES = ["openid", "profile", "email"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--provider", type=Path, default=None)
    parser.add_argument(
        "--machines", nargs=2, metavar=("FILE", "SERVICE"), default=None
    )
    args = parser.parse_args()
    import django

    django.setup()
    # XenX and Django models are importable only now.
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from accounts.models import User
    from accounts.tokens import issue_tokens
    from core.roles import Role

    unusable = make_password(None)
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(
                email=f"bench-{i:05d}@example.com",
                role=Role.CLIENT,
                password=unusable,
            )
            for i in range(args.count)
        )
        tokens = [issue_tokens(user, mfa=False)["access"] for user in users]
    args.out.write_text("\n".join(tokens) + "\n")
    print(f"BENCH_USERS={len(tokens)}")
    if args.provider or args.machines:
        admin = User.objects.create(
            email="bench-admin@example.com", role=Role.ADMIN, password=unusable
        )
    if args.provider:
        provider = sign_in_tokens(admin, users)
        args.provider.write_text("\n".join(provider) + "\n")
        print(f"BENCH_PROVIDER={len(provider)}")
    if args.machines:
        machines = machine_tokens(admin, args.count, args.machines[1])
        Path(args.machines[0]).write_text("\n".join(machines) + "\n")
        print(f"BENCH_MACHINES={len(machines)}")
    return 0


def _token_request(app, grant_type: str, scopes: list[str]):
    """The oauthlib request django-oauth-toolkit hands its ``ACCESS_TOKEN_GENERATOR``
    once the validator has judged the token request."""
    from oauthlib.common import Request  # imported only when a provider token is made

    request = Request("https://127.0.0.1/o/token/", http_method="POST")
    request.client = app
    request.grant_type = grant_type
    request.scopes = scopes
    return request


def sign_in_tokens(admin, users) -> list[str]:
    """Each user signed in once at one registered application (authorization code):
    the application session its authorization records, then its access token."""
    # XenX is imported after django.setup() (main), as in the rest of this script.
    from django.db import transaction

    from accounts.models import Application, ApplicationSession
    from accounts.oidc import services
    from accounts.oidc.rules import may_sign_in
    from accounts.oidc.tokens import access_token

    with transaction.atomic():
        app, _secret = services.application_create(
            actor=admin,
            name="bench sign-in",
            client_type=Application.CLIENT_CONFIDENTIAL,
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=["https://app.example.com/callback"],
            skip_consent=True,
        )
        now = time.time()
        sessions = ApplicationSession.objects.bulk_create(
            ApplicationSession(user=user, application=app, auth_time=now, amr=["pwd"])
            for user in users
        )
        tokens = []
        for user, session in zip(users, sessions, strict=True):
            if not may_sign_in(user, app):  # the rule the code exchange applies
                raise SystemExit(f"{user.email} may not sign in at the application")
            request = _token_request(app, "authorization_code", SIGN_IN_SCOPES)
            request.user = user
            request.xenx_session = session
            tokens.append(access_token(request))
    return tokens


def machine_tokens(admin, count: int, service: str) -> list[str]:
    """``count`` machine clients allowed ``service`` as ``client``, one token each."""
    # XenX is imported after django.setup() (main), as in the rest of this script.
    from django.db import transaction
    from django.test import override_settings
    from oauth2_provider.settings import oauth2_settings

    from accounts.models import Application
    from accounts.oidc import services
    from accounts.oidc.tokens import access_token
    from core.roles import Role

    tokens = []
    # Their secrets are never used (the tokens are minted here): hashed with the
    # fastest hasher, as the test settings do, or 1,000 Argon2 hashes take minutes.
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with override_settings(PASSWORD_HASHERS=fast), transaction.atomic():
        for i in range(count):
            app, _secret = services.application_create(
                actor=admin,
                name=f"bench machine {i:05d}",
                client_type=Application.CLIENT_CONFIDENTIAL,
                grant_types=["client_credentials"],
                allowed_services=[service],
                role=Role.CLIENT,
            )
            request = _token_request(
                app, "client_credentials", list(oauth2_settings.DEFAULT_SCOPES)
            )
            tokens.append(access_token(request))
    return tokens


if __name__ == "__main__":
    sys.exit(main())
