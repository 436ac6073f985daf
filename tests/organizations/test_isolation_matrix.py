"""The isolation matrix (README "Organizations, users and documents": every route of users, organizations and documents, for
each of the four roles, against objects of its own and of a foreign organization.

An object outside what the caller may see answers 404; one it sees but may not change
answers 403. ``test_every_route_is_in_the_matrix`` fails when a view is added to the
organizations or users API without a row here.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver

from core.roles import Role
from organizations.bases import ScopedViewSet
from tests.conftest import assert_error
from tests.organizations import files

pytestmark = pytest.mark.django_db

ADMIN, STAFF, CPA, CLIENT = Role.ADMIN, Role.STAFF, Role.CPA, Role.CLIENT
ROLES = [ADMIN, STAFF, CPA, CLIENT]


def _org(w, scope):
    return w.orgs[scope].pk


def _user(kind):
    return lambda w, scope: w.users[scope, kind].pk


def _doc(kind):
    return lambda w, scope: w.documents[scope, kind].pk


def _invitation(role):
    """``{org id}/invitations/{invitation id}`` of a new pending invitation (of
    ``role``) to the scope's organization."""

    def make(w, scope):
        from datetime import timedelta

        from django.utils import timezone

        from organizations.models import Invitation, hash_invitation_token

        invitation = Invitation.objects.create(
            organization=w.orgs[scope],
            email=f"invitee-{scope}-{role}@example.com",
            role=role,
            token_hash=hash_invitation_token(f"token-{scope}-{role}"),
            expires_at=timezone.now() + timedelta(days=7),
        )
        return f"{w.orgs[scope].pk}/invitations/{invitation.pk}"

    return make


def _new_user_body(w, scope):
    return {
        "email": f"new-{scope}@example.com",
        "first_name": "New",
        "last_name": "Client",
        "role": CLIENT,
        "organization": w.orgs[scope].pk,
    }


def _upload_body(w, scope):
    return {
        "file": SimpleUploadedFile("a.pdf", files.PDF),
        "owner": w.users[scope, "target"].pk,
    }


# (route name, method, url, object id of the scope, body, {role: status} per scope)
# Statuses: own organization, foreign organization.
def row(name, method, url, obj=None, body=None, *, own, foreign):
    return (name, method, url, obj, body, own, foreign)


def everyone(status):
    return dict.fromkeys(ROLES, status)


def admin_only(status, others):
    return {ADMIN: status, STAFF: others, CPA: others, CLIENT: others}


MATRIX = [
    # Organizations
    row("organization-list", "get", "/api/organizations", own=everyone(200), foreign=everyone(200)),
    row("organization-list", "post", "/api/organizations", body=lambda w, s: {"name": f"New {s}"},
        own=admin_only(201, 403), foreign=admin_only(201, 403)),
    row("organization-detail", "get", "/api/organizations/{id}", _org,
        own=everyone(200), foreign=admin_only(200, 404)),
    row("organization-detail", "patch", "/api/organizations/{id}", _org, lambda w, s: {"name": "Renamed"},
        own=admin_only(200, 403), foreign=admin_only(200, 404)),
    row("organization-detail", "delete", "/api/organizations/{id}", _org,
        own=admin_only(204, 403), foreign=admin_only(204, 404)),
    row("organization-invitations", "post", "/api/organizations/{id}/invitations", _org,
        lambda w, s: {"email": f"invitee-{s}@example.com", "role": CLIENT},
        own={ADMIN: 201, STAFF: 201, CPA: 201, CLIENT: 403}, foreign=admin_only(201, 404)),
    row("organization-invitations", "get", "/api/organizations/{id}/invitations", _org,
        own=everyone(200), foreign=admin_only(200, 404)),
    row("organization-invitation-resend", "post", "/api/organizations/{id}/resend",
        _invitation(CLIENT),
        own={ADMIN: 200, STAFF: 200, CPA: 200, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("organization-invitation-resend", "post", "/api/organizations/{id}/resend",
        _invitation(STAFF),
        own={ADMIN: 200, STAFF: 200, CPA: 404, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("organization-invitation-revoke", "delete", "/api/organizations/{id}", _invitation(CLIENT),
        own={ADMIN: 204, STAFF: 204, CPA: 204, CLIENT: 404}, foreign=admin_only(204, 404)),
    row("organization-invitation-revoke", "delete", "/api/organizations/{id}", _invitation(STAFF),
        own={ADMIN: 204, STAFF: 204, CPA: 404, CLIENT: 404}, foreign=admin_only(204, 404)),
    # Users
    row("user-list", "get", "/api/users", own=everyone(200), foreign=everyone(200)),
    row("user-list", "post", "/api/users", body=_new_user_body,
        own={ADMIN: 201, STAFF: 201, CPA: 201, CLIENT: 403}, foreign=admin_only(201, 403)),
    row("user-detail", "get", "/api/users/{id}", _user("target"),
        own={ADMIN: 200, STAFF: 200, CPA: 200, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("user-detail", "get", "/api/users/{id}", _user(STAFF),
        own={ADMIN: 200, STAFF: 200, CPA: 404, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("user-detail", "patch", "/api/users/{id}", _user("target"), lambda w, s: {"first_name": "Renamed"},
        own={ADMIN: 200, STAFF: 200, CPA: 200, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("user-detail", "patch", "/api/users/{id}", _user(CPA), lambda w, s: {"first_name": "Renamed"},
        own={ADMIN: 200, STAFF: 200, CPA: 200, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("user-detail", "delete", "/api/users/{id}", _user("target"),
        own={ADMIN: 204, STAFF: 204, CPA: 403, CLIENT: 404}, foreign=admin_only(204, 404)),
    row("user-deactivate", "post", "/api/users/{id}/deactivate", _user("target"),
        own={ADMIN: 200, STAFF: 200, CPA: 403, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("user-activate", "post", "/api/users/{id}/activate", _user("target"),
        own={ADMIN: 200, STAFF: 200, CPA: 403, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("user-reset-mfa", "post", "/api/users/{id}/reset-mfa", _user("target"),
        own={ADMIN: 200, STAFF: 200, CPA: 403, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("user-unlock", "post", "/api/users/{id}/unlock", _user("target"),
        own={ADMIN: 200, STAFF: 200, CPA: 403, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("user-unlock", "post", "/api/users/{id}/unlock", _user(STAFF),
        own={ADMIN: 200, STAFF: 403, CPA: 404, CLIENT: 404}, foreign=admin_only(200, 404)),
    # Documents
    row("document-list", "get", "/api/documents", own=everyone(200), foreign=everyone(200)),
    row("document-list", "post", "/api/documents", body=_upload_body,
        own={ADMIN: 201, STAFF: 201, CPA: 201, CLIENT: 400}, foreign=admin_only(201, 400)),
    row("document-detail", "get", "/api/documents/{id}", _doc("target"),
        own={ADMIN: 200, STAFF: 200, CPA: 200, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("document-detail", "get", "/api/documents/{id}", _doc(CLIENT),
        own=everyone(200), foreign=admin_only(200, 404)),
    row("document-detail", "delete", "/api/documents/{id}", _doc("target"),
        own={ADMIN: 204, STAFF: 204, CPA: 204, CLIENT: 404}, foreign=admin_only(204, 404)),
    row("document-detail", "delete", "/api/documents/{id}", _doc(CLIENT),
        own=everyone(204), foreign=admin_only(204, 404)),
    row("document-download", "get", "/api/documents/{id}/download", _doc("target"),
        own={ADMIN: 200, STAFF: 200, CPA: 200, CLIENT: 404}, foreign=admin_only(200, 404)),
    row("document-download", "get", "/api/documents/{id}/download", _doc(CLIENT),
        own=everyone(200), foreign=admin_only(200, 404)),
]  # fmt: skip

CASES = [
    pytest.param(r, scope, role, id=f"{r[1]}-{r[2]}-{r[3].__qualname__ if r[3] else ''}-{scope}-{role}")
    for r in MATRIX
    for scope in ("own", "foreign")
    for role in ROLES
]  # fmt: skip

CODES = {400: "validation_error", 403: "permission_denied", 404: "not_found"}


def _call(client, method, url, body):
    if method == "post" and url == "/api/documents":
        return client.post(url, body, format="multipart")
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize(("row", "scope", "role"), CASES)
def test_matrix(world, auth_client, row, scope, role):
    _name, method, url, obj, body, own, foreign = row
    expected = (own if scope == "own" else foreign)[role]
    client = auth_client(world.actor(role))
    if obj is not None:
        url = url.format(id=obj(world, scope))
    resp = _call(client, method, url, body(world, scope) if body else None)
    if expected >= 400:
        assert_error(resp, expected, CODES[expected])
    else:
        assert resp.status_code == expected, resp.content[:300]


@pytest.mark.parametrize("role", ROLES)
def test_lists_show_exactly_the_visible_rows(world, auth_client, role):
    client = auth_client(world.actor(role))
    w = world
    own_users = {u.pk for (scope, _), u in w.users.items() if scope == "own"}
    all_users = {u.pk for u in w.users.values()} | {w.admin.pk}
    own_clients = {w.users["own", CLIENT].pk, w.users["own", "target"].pk}
    expected_users = {
        ADMIN: all_users,
        STAFF: own_users,
        CPA: own_clients | {w.users["own", CPA].pk},
        CLIENT: {w.users["own", CLIENT].pk},
    }[role]
    users = client.get("/api/users?page_size=200").json()["results"]
    assert {u["id"] for u in users} == expected_users

    own_docs = {d.pk for (scope, _), d in w.documents.items() if scope == "own"}
    expected_docs = {
        ADMIN: {d.pk for d in w.documents.values()},
        STAFF: own_docs,
        CPA: own_docs,
        CLIENT: {w.documents["own", CLIENT].pk},
    }[role]
    docs = client.get("/api/documents").json()["results"]
    assert {d["id"] for d in docs} == expected_docs

    orgs = client.get("/api/organizations").json()["results"]
    expected_orgs = (
        {o.pk for o in w.orgs.values()} if role == ADMIN else {_org(w, "own")}
    )
    assert {o["id"] for o in orgs} == expected_orgs


@pytest.mark.parametrize("role", ROLES)
def test_everyone_sees_itself(world, auth_client, role):
    actor = world.actor(role)
    resp = auth_client(actor).get(f"/api/users/{actor.pk}")
    assert resp.status_code == 200
    assert resp.json()["email"] == actor.email


def _plain(pattern) -> str:
    return str(pattern).lstrip("^").rstrip("$")


def _routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + _plain(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + _plain(p.pattern), p


def test_every_route_is_in_the_matrix():
    """Each (route, method) of /api/organizations, /api/users and /api/documents has
    a matrix row, so a new view cannot skip the isolation checks."""
    served = set()
    for path, pattern in _routes(get_resolver().url_patterns):
        if not path.startswith(("api/organizations", "api/users", "api/documents")):
            continue
        actions = getattr(pattern.callback, "actions", None)
        assert actions, f"{path} is not a scoped viewset route"
        assert issubclass(pattern.callback.cls, ScopedViewSet), path
        for method in set(actions) - {"head"}:  # HEAD is served by GET
            served.add((pattern.name, method))
    covered = {(r[0], r[1]) for r in MATRIX}
    assert len(served) == 23
    assert served == covered
