"""Validation of the registry's own vocabulary: service names, instance URLs, rates."""

from __future__ import annotations

import os
import re
import ssl
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from core import rates
from core.roles import Role

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# The platform's own routes under /api/ (README "Gateway").
RESERVED_NAMES = frozenset(
    {
        "auth",
        "users",
        "organizations",
        "documents",
        "services",
        "audit-events",
        "apps",
        "schema",
        "docs",
        "health",
    }
)
# "app": machine clients (README "Machine clients").
RATE_KEYS = frozenset({*Role.values, "anonymous", "app"})
CONTENT_TYPE_RE = re.compile(r"^[a-z0-9!#$&^_.+-]+/([a-z0-9!#$&^_.+-]+|\*)$")


def validate_service_name(value: str) -> None:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ValidationError(
            "Use 1-63 lowercase letters, digits or hyphens, starting with a letter "
            "or digit."
        )
    if value in RESERVED_NAMES:
        raise ValidationError(f"'{value}' is reserved for the platform's own routes.")


def validate_instance_url(value: str) -> None:
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ValidationError("Enter a valid http(s) URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("The URL must be http:// or https:// with a host.")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(
            "The URL must not carry a query, fragment or credentials."
        )
    if port == 0:
        raise ValidationError("Enter a valid port.")


def validate_ca_bundle(value: str) -> None:
    """A PEM file of CA certificates that the gateway can load (empty: none)."""
    if not value:
        return
    if not os.path.isabs(value):
        raise ValidationError("Give the CA bundle's absolute path.")
    try:
        ssl.create_default_context(cafile=value)
    except (OSError, ssl.SSLError, ValueError):
        raise ValidationError(
            f"{value!r} is not a readable PEM file of CA certificates."
        ) from None


def parse_rate(value: str) -> tuple[int, int]:
    """'60/m' → (60, 60); '10/15m' → (10, 900) (``core.rates``, the one grammar).
    Raises ValidationError."""
    try:
        return rates.parse_rate(value)
    except rates.InvalidRate as exc:
        raise ValidationError(str(exc)) from None


def validate_rate_limits(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError('Give an object of role → rate, e.g. {"client": "60/m"}.')
    for key, rate in value.items():
        if key not in RATE_KEYS:
            raise ValidationError(
                f"Unknown key {key[:40]!r}; use one of {', '.join(sorted(RATE_KEYS))}."
            )
        parse_rate(rate)


def validate_roles(value) -> None:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ValidationError("Give a list of roles.")
    unknown = sorted(set(value) - set(Role.values))
    if unknown:
        raise ValidationError(
            f"Unknown role(s): {', '.join(unknown)}; use {', '.join(Role.values)}."
        )


def validate_content_types(value) -> None:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ValidationError("Give a list of media types.")
    for item in value:
        if not CONTENT_TYPE_RE.fullmatch(item.lower()):
            raise ValidationError(f"'{item}' is not a media type like 'image/png'.")


def validate_health_path(value: str) -> None:
    if not value.startswith("/") or "//" in value or ".." in value:
        raise ValidationError("The health check path must start with '/'.")
