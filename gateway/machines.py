"""What the gateway does differently for a machine client (README "Machine clients"):
an application's client-credentials token, with no user. The token itself is judged
by the one policy (``accounts.policy.judge``); here are only the gateway's
own consequences, called from one line each in the pipeline's steps
(``gateway.pipeline``: the limit, the admission) and in forwarding:

- ``rate_subject``: counted per application at the ``app`` rate;
- ``admit``: only the services in its ``allowed_services`` (403 otherwise), and a
  service's role list applies when the application has a role;
- ``upstream_headers``: ``X-Client-Id`` and, for ``sign_identity`` services,
  ``X-XenX-Identity`` with ``sub`` = ``app:<client_id>`` instead of the user headers.
"""

from __future__ import annotations

from django.conf import settings

from accounts.oidc.tokens import MACHINE_PREFIX
from accounts.tokens import is_machine_payload
from core.errors import Forbidden

from . import assertions

RATE_NAME = "app"  # the XENX_RATE_LIMITS / service rate_limits entry for machines
CLIENT_HEADER = "X-Client-Id"


def rate_subject(payload) -> tuple[str | None, object]:
    """(rate name, counter key) of a caller by its verified token ``payload``: the role
    the token names and its user, or the ``app`` rate and its application; (None,
    None) when anonymous."""
    if payload is None:
        return None, None
    if is_machine_payload(payload):
        return RATE_NAME, MACHINE_PREFIX + str(payload["client_id"])
    return payload.get("role"), int(payload["user_id"])


def admit(svc, identity) -> None:
    if svc.name not in identity.services:
        raise Forbidden(f"This application may not call service {svc.name!r}.")
    if svc.allowed_roles and identity.role and identity.role not in svc.allowed_roles:
        raise Forbidden(f"This application's role may not call service {svc.name!r}.")


def upstream_headers(svc, identity, request_id: str) -> dict:
    headers = {CLIENT_HEADER: identity.client_id}
    if svc.sign_identity:
        headers[assertions.HEADER] = _assertion(identity, svc.name, request_id)
    return headers


def _assertion(identity, service: str, request_id: str) -> str:
    """As ``assertions.assertion_for``, with the application as the subject."""
    key = (settings.XENX_JWT_ALGORITHM, service, identity.client_id, identity.role)
    subject = {
        "sub": MACHINE_PREFIX + identity.client_id,
        "client_id": identity.client_id,
        "role": identity.role or None,
        "org": None,
        "mfa": False,
    }
    return assertions.signed(
        assertions.signed_assertions,
        key,
        service=service,
        request_id=request_id,
        subject=subject,
    )
