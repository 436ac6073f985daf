"""Typed readers for settings that come from the environment.

One small module instead of a dependency: every XenX setting is read through these
functions so that a malformed value fails at start-up with the variable's name, and
every name read is recorded in ``DECLARED``: an ``XENX_*`` variable in the environment
that no reader asked for is a typo, refused by the system check ``xenx.E009``.
"""

import json
import os
import socket

from django.core.exceptions import ImproperlyConfigured

DECLARED: set[str] = set()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def declare(*names: str) -> None:
    """Record variables read elsewhere (gunicorn.conf.py, the test suite's knobs)."""
    DECLARED.update(names)


def env_str(name: str, default: str | None = None) -> str | None:
    DECLARED.add(name)
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    DECLARED.add(name)
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be a boolean (1/0, true/false), got {raw!r}"
    )


def env_int(name: str, default: int) -> int:
    DECLARED.add(name)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    DECLARED.add(name)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    DECLARED.add(name)
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_json_object(name: str) -> dict:
    DECLARED.add(name)
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {type(value)}")
    return value


DEFAULT_ADDR = "127.0.0.1:8000"
_WILDCARD_HOSTS = {"", "0.0.0.0", "[::]", "::"}  # noqa: S104 (names, not binds)


def served_address() -> str:
    """``XENX_ADDR``, the ``host:port`` gunicorn.conf.py binds."""
    return env_str("XENX_ADDR") or DEFAULT_ADDR


def public_url() -> str:
    """``XENX_PUBLIC_URL``, by default the address served (a wildcard host is named by
    the machine's host name): the links in mails and the tokens' issuer then point
    at the server that made them."""
    configured = env_str("XENX_PUBLIC_URL")
    if configured is not None:
        return configured
    host, _, port = served_address().rpartition(":")
    if host in _WILDCARD_HOSTS:
        host = socket.gethostname()
    return f"http://{host}:{port}"
