"""The one rate grammar: ``N/period``, period ``s``, ``m``, ``h`` or ``d`` with an
optional multiplier (``60/m``, ``10/15m``).

Used by the system check of ``XENX_RATE_LIMITS`` (xenx/checks.py), the gateway's
service validators and registry, and so by the API, Django admin and the commands.
django-ratelimit's own parser is lenient where leniency is dangerous: ``0/m`` and
``10/0m`` parse (the first left a role unlimited, the second divided by zero on every
call), ``10/x`` silently means ``10/s``. Here a count or a multiplier is 1 to
999,999,999 written without a leading zero, nothing else is allowed around it, and
the pattern is anchored with bounded repeats, so its time does not grow with the
length of what it is given.
"""

from __future__ import annotations

import re

RATE_RE = re.compile(r"([1-9][0-9]{0,8})/([1-9][0-9]{0,8})?([smhd])")
PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EXAMPLE = "'60/m' or '10/15m'"


class InvalidRate(ValueError):
    """A rate that is not ``N/period``, with the reason in a sentence."""


def parse_rate(value: object) -> tuple[int, int]:
    """``'60/m'`` → ``(60, 60)``; ``'10/15m'`` → ``(10, 900)``: the count and the
    window in seconds. Anything else raises InvalidRate."""
    match = RATE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidRate(
            f"{_shown(value)} is not a rate like {EXAMPLE}: a count of at least 1, '/', and a "
            "period s, m, h or d, optionally multiplied by a number of at least 1."
        )
    count, multiplier, period = match.groups()
    return int(count), PERIOD_SECONDS[period] * int(multiplier or 1)


def _shown(value: object) -> str:
    """The value for a message: a string's first 40 characters, another type's name
    (the repr of a huge number is refused by Python itself)."""
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    return f"a {type(value).__name__}"
