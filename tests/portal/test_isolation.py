"""The portal's isolation matrix: every portal page that shows data, for each role,
against objects of its own and of a foreign organization (README "Organizations, users and documents": outside the scope is
404). ``test_every_portal_route_is_covered`` fails when a page is added without a row
here or a named test elsewhere."""

import pytest
from django.urls import reverse

from core.roles import Role
from portal.urls import urlpatterns

ADMIN, STAFF, CPA, CLIENT = Role.ADMIN, Role.STAFF, Role.CPA, Role.CLIENT
ROLES = [ADMIN, STAFF, CPA, CLIENT]


def everyone(status):
    return dict.fromkeys(ROLES, status)


STAFF_PAGE = {ADMIN: 200, STAFF: 200, CPA: 200, CLIENT: 404}
ADMIN_ONLY = {ADMIN: 200, STAFF: 404, CPA: 404, CLIENT: 404}

# route name → (object kind or None, {role: status} own org, {role: status} foreign org)
MATRIX = {
    "dashboard": (None, everyone(200), None),
    "clients": (None, STAFF_PAGE, None),
    "documents": (None, everyone(200), None),
    "account": (None, everyone(200), None),
    "client-detail": ("client", STAFF_PAGE, ADMIN_ONLY),
    "document-download": ("document", STAFF_PAGE, ADMIN_ONLY),
}

# Routes about the caller itself or writes, each tested in its own module.
ELSEWHERE = {
    "login": "test_login",
    "login-verify": "test_mfa",
    "logout": "test_login / test_security",
    "client-invite": "test_invite_upload",
    "document-upload": "test_invite_upload",
    "password-change": "test_mfa",
    "totp-begin": "test_mfa",
    "totp-confirm": "test_mfa",
    "mfa-disable": "test_mfa",
    "backup-codes": "test_mfa",
    "session-end": "test_sessions",
    "signup": "test_lifecycle",
    "register": "test_lifecycle",
    "verify-email": "test_lifecycle",
    "password-reset": "test_lifecycle",
    "password-reset-confirm": "test_lifecycle",
    "email-change": "test_lifecycle",
    "email-confirm": "test_lifecycle",
    "invitation-resend": "test_lifecycle",
    "invitation-revoke": "test_lifecycle",
}


def test_every_portal_route_is_covered():
    names = {p.name for p in urlpatterns}
    assert names == set(MATRIX) | set(ELSEWHERE)


@pytest.fixture
def world(make_user, org, other_org, make_document):
    """A user of each role in ``org`` (admin in none), and in each organization a
    client with a document."""
    users = {role: make_user(role) for role in ROLES}
    targets = {
        "own": make_user(CLIENT, organization=org),
        "foreign": make_user(CLIENT, organization=other_org),
    }
    docs = {
        scope: make_document(user, title=f"Doc of {scope} client")
        for scope, user in targets.items()
    }
    return users, targets, docs


CASES = [
    (name, role, scope)
    for name, (_, own, foreign) in MATRIX.items()
    for scope, table in (("own", own), ("foreign", foreign))
    if table is not None
    for role in ROLES
]


@pytest.mark.parametrize(("name", "role", "scope"), CASES)
def test_portal_isolation(world, signed_in, name, role, scope):
    users, targets, docs = world
    kind, own, foreign = MATRIX[name]
    expected = (own if scope == "own" else foreign)[role]
    if kind == "client":
        url = reverse(f"portal:{name}", args=[targets[scope].pk])
    elif kind == "document":
        url = reverse(f"portal:{name}", args=[docs[scope].pk])
    else:
        url = reverse(f"portal:{name}")
    browser, _ = signed_in(users[role])
    response = browser.get(url)
    assert response.status_code == expected, (name, role, scope)
    if expected == 200 and kind is None:
        # Lists never show the foreign organization's client or document.
        html = response.content.decode()
        if role != ADMIN:
            assert targets["foreign"].email not in html
            assert "Doc of foreign client" not in html
