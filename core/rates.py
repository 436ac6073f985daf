"""Rates like ``60/m`` or ``10/15m`` (README "Settings" ``XENX_RATE_LIMITS``): the one
parser for service limits, application limits and settings."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

RATE_RE = re.compile(r"^([0-9]+)/([0-9]*)([smhd])$")


def parse_rate(value: str) -> tuple[int, int]:
    """'60/m' → (60, 60); '10/15m' → (10, 900). Raises ValidationError."""
    match = RATE_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValidationError(f"'{value}' is not a rate like '60/m' or '10/15m'.")
    count, multi, period = match.groups()
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period] * int(multi or 1)
    if int(count) < 1:
        raise ValidationError("A rate must allow at least one request.")
    return int(count), seconds
