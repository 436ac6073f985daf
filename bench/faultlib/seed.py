"""Seed the fault harness's database: run inside XenX by ``cluster.Cluster.seed``
(``manage.py shell``), configured by the JSON in ``FAULTS_SEED``; prints one line
``SEED_JSON {...}`` with the users, their tokens and the services.

Tokens are issued directly (``accounts.tokens.issue_tokens``), not by logging in: the
scenarios log in only where the login itself is what they measure.
"""

import json
import os

from accounts.models import User
from accounts.services import user_create
from accounts.tokens import issue_tokens
from gateway.services import service_create
from organizations.services import organization_create

cfg = json.loads(os.environ["FAULTS_SEED"])
password = cfg["password"]
org = organization_create(name="Fault Firm")


def make(email, role, organization=org, with_password=False):
    # Hashing (Argon2) only where a scenario logs in: seeding stays quick.
    return user_create(
        email=email,
        role=role,
        organization=organization,
        password=password if with_password else None,
        email_verified=True,
    )


admin = make("admin@faults.test", "admin", None)
admin.is_superuser = admin.is_staff = True
admin.save()


def tokens(user):
    issued = issue_tokens(user, mfa=False)
    return {"access": issued["access"], "refresh": issued["refresh"]}


out = {"admin": {"id": admin.pk, **tokens(admin)}, "users": []}
for i in range(cfg["users"]):
    user = make(f"load{i}@faults.test", "client")
    out["users"].append({"id": user.pk, "access": tokens(user)["access"]})
for name in cfg["special"]:
    user = make(f"{name}@faults.test", "client", with_password=name == "login")
    out[name] = {"id": user.pk, "email": user.email, **tokens(user)}

ups = cfg["upstreams"]
common = {"timeout_seconds": 5, "health_check_path": "/healthz"}
service_create(
    name="echo", instances=ups, retries=len(ups) - 1,
    rate_limits={"client": "1000000/m", "admin": "1000000/m"}, **common,
)  # fmt: skip
service_create(
    name="limited", instances=ups[:1], retries=0,
    rate_limits={"client": f"{cfg['limit']}/h"}, **common,
)  # fmt: skip
service_create(
    name="clients", instances=ups[:1], retries=0, allowed_roles=["client"],
    rate_limits={"client": "1000000/m"}, **common,
)  # fmt: skip
service_create(
    name="flaky", instances=[cfg["breaker_url"], ups[0]], retries=1,
    rate_limits={"client": "1000000/m"}, **common,
)  # fmt: skip
service_create(
    name="moving", instances=ups[:1], retries=0,
    rate_limits={"client": "1000000/m"}, **common,
)  # fmt: skip
out["user_count"] = User.objects.count()
print("SEED_JSON " + json.dumps(out))
