"""The API login of tests: ``POST /api/auth/login`` as a fresh client."""

from __future__ import annotations

from rest_framework.test import APIClient

DEFAULT_PASSWORD = "correct-horse-battery-staple-42"


def api_login(email: str, password: str = DEFAULT_PASSWORD, *, client=None, **extra):
    """The response of ``/api/auth/login`` (``extra``: request META such as
    ``REMOTE_ADDR`` or ``HTTP_USER_AGENT``), sent by ``client`` or a fresh APIClient."""
    return (client or APIClient()).post(
        "/api/auth/login",
        {"email": email, "password": password},
        format="json",
        **extra,
    )
