"""Helpers for tests that sign with EdDSA / RS256 key files (accounts.keys)."""

from accounts import keys

DAY = 86400.0


def use_signing_keys(settings, directory, alg, *, signs_from=None):
    """Configure ``alg`` with a key directory; for an asymmetric ``alg`` write one key
    that signs now (from ``signs_from``, default a second ago) and return it."""
    settings.XENX_JWT_ALGORITHM = alg
    settings.XENX_SIGNING_KEYS_DIR = str(directory)
    keys.keyring.invalidate()
    if alg not in keys.ASYMMETRIC:
        return None
    start = keys.now() - 1 if signs_from is None else signs_from
    return keys.write_key(directory, alg, signs_from=start)
