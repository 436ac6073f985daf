"""Create ``N`` client users and write one access token per line (run by the harness).

The users are made in one ``bulk_create`` (no password: they never log in) and their
tokens minted with ``accounts.tokens.issue_tokens``, as a login would, without going
through the login throttle. Run with XenX's environment from the repository root:
``python bench/benchkit/mint.py N FILE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    count, out = int(sys.argv[1]), Path(sys.argv[2])
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from accounts.models import User
    from accounts.tokens import issue_tokens
    from core.roles import Role

    unusable = make_password(None)
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(
                email=f"bench-{i:05d}@example.com", role=Role.CLIENT, password=unusable
            )
            for i in range(count)
        )
        tokens = [issue_tokens(user, mfa=False)["access"] for user in users]
    out.write_text("\n".join(tokens) + "\n")
    print(f"BENCH_USERS={len(tokens)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
