"""A frozen TOTP clock: the verifier (``accounts.mfa.now``) and the codes a test computes
read the same instant, so no test depends on where the wall clock is in its 30-second
step, and none waits for the next one."""

from __future__ import annotations

import base64
import time

import pyotp

STEP = 30


class TotpClock:
    """Frozen in the middle of a step; ``tick`` moves it on by whole steps."""

    def __init__(self, now: float | None = None):
        start = time.time() if now is None else now
        self.now = (int(start) // STEP) * STEP + STEP / 2

    def __call__(self) -> float:
        return self.now

    def tick(self, steps: int = 1) -> None:
        self.now += STEP * steps

    def code(self, secret: str, *, steps: int = 0) -> str:
        """The code of ``secret`` (base32) ``steps`` steps from now."""
        return pyotp.TOTP(secret).at(self.now + STEP * steps)

    def device_code(self, device, *, steps: int = 0) -> str:
        """The code of a django-otp ``TOTPDevice``."""
        return self.code(base64.b32encode(device.bin_key).decode(), steps=steps)
