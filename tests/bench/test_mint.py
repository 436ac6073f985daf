"""The benchmark's provider tokens (``bench/benchkit/mint.py``, targets h and i) are the
provider's own: the gateway's policy takes them as an application's user and machine,
and they end with their sign-in or application like any other."""

import sys
from pathlib import Path

import pytest

from accounts import policy
from accounts.oidc import services
from core.errors import TokenRevoked
from core.roles import Role

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from benchkit.mint import machine_tokens, sign_in_tokens  # noqa: E402


@pytest.fixture
def admin(make_user):
    return make_user(Role.ADMIN)


def test_sign_in_tokens_are_the_users_at_one_application(admin, make_user):
    users = [make_user(Role.CLIENT) for _ in range(3)]
    tokens = sign_in_tokens(admin, users)
    identities = [policy.token_identity(t, door=policy.Door.GATEWAY) for t in tokens]
    assert [i.user_id for i in identities] == [u.pk for u in users]
    assert len({i.client_id for i in identities}) == 1
    assert all(not i.is_machine and i.role == Role.CLIENT for i in identities)
    families = {i.payload["fam"] for i in identities}
    assert len(families) == 3  # one sign-in each
    services.end_session(identities[0].payload["fam"])
    with pytest.raises(TokenRevoked):
        policy.token_identity(tokens[0], door=policy.Door.GATEWAY)
    policy.token_identity(tokens[1], door=policy.Door.GATEWAY)


def test_machine_tokens_are_one_per_application_allowed_the_service(admin):
    tokens = machine_tokens(admin, 2, "bench-auth")
    identities = [policy.token_identity(t, door=policy.Door.GATEWAY) for t in tokens]
    assert all(i.is_machine for i in identities)
    assert len({i.client_id for i in identities}) == 2
    assert all(
        i.services == ("bench-auth",) and i.role == Role.CLIENT for i in identities
    )
