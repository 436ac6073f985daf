from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import keys
from accounts.keys import (
    ASYMMETRIC,
    DEFAULT_GRACE_SECONDS,
    iso,
    keyring,
    keys_dir,
    max_token_seconds,
    write_key,
)


class Command(BaseCommand):
    # Runs to fix what the signing-key check (xenx.E010/E011) reports.
    requires_system_checks: list = []

    help = (
        "Add a signing key to XENX_SIGNING_KEYS_DIR: published in the JWKS at once, "
        "signing after the grace period (at once when no key signs yet). Keys whose "
        "tokens have all expired are retired and their files removed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--algorithm",
            choices=ASYMMETRIC,
            help="Key type (default: XENX_JWT_ALGORITHM); lets you create keys before "
            "switching the setting.",
        )
        parser.add_argument(
            "--grace",
            type=int,
            default=DEFAULT_GRACE_SECONDS,
            help="Seconds between publishing the key and signing with it "
            f"(default {DEFAULT_GRACE_SECONDS}, twice the JWKS cache lifetime).",
        )
        parser.add_argument(
            "--prune-only",
            action="store_true",
            help="Only remove the files of retired keys.",
        )

    def handle(self, *args, algorithm=None, grace, prune_only, **options):
        alg = algorithm or settings.XENX_JWT_ALGORITHM
        if alg not in ASYMMETRIC:
            raise CommandError(
                f"XENX_JWT_ALGORITHM is {alg}: HS256 uses SECRET_KEY and has no key "
                "files. Set XENX_JWT_ALGORITHM=EdDSA (or RS256), or pass --algorithm."
            )
        directory = keys_dir()
        if directory is None:
            raise CommandError(
                "XENX_SIGNING_KEYS_DIR is not set: name a directory shared by every node."
            )
        if grace < 0:
            raise CommandError("--grace must be 0 or more seconds.")
        states = keyring.states(alg, force=True)
        for key in states.retired:
            Path(key.path).unlink(missing_ok=True)
            self.stdout.write(f"Retired {alg} key {key.kid}: file removed.")
        if prune_only:
            return
        now = keys.now()
        current = states.signing
        signs_from = now + grace if current is not None else now
        try:
            new = write_key(directory, alg, signs_from=signs_from)
        except OSError as exc:
            raise CommandError(f"Cannot write to {directory}: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"New {alg} key {new.kid} published in the JWKS now; it signs from "
                f"{iso(signs_from)}."
            )
        )
        if current is not None:
            self.stdout.write(
                f"Key {current.kid} signs until then and stays published until "
                f"{iso(signs_from + max_token_seconds())}, when every token it signed "
                "has expired; run this command again after that (or with --prune-only) "
                "to remove its file."
            )
