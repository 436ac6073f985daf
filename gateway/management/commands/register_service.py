from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.errors import ValidationFailed, details_text
from core.roles import Role
from gateway.services import service_register
from gateway.validators import RATE_KEYS, parse_rate

# The yes/no options: each changes its field only when one of its flags is given.
SWITCHES = ("public", "enabled", "sign_identity", "serves_pages")


def _switch(parser, dest: str, *flags) -> None:
    """Two exclusive flags, each ``(flag, value, help)``, setting ``dest``; None (leave
    the field as it is) when neither is given."""
    group = parser.add_mutually_exclusive_group()
    for flag, value, help_text in flags:
        group.add_argument(
            flag,
            dest=dest,
            action="store_const",
            const=value,
            default=None,
            help=help_text,
        )


class Command(BaseCommand):
    help = (
        "Create a gateway service, or update it: the instance list becomes the URLs "
        "given, and only the options given change."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Service name: /api/NAME/... is forwarded.")
        parser.add_argument(
            "urls", nargs="+", metavar="URL", help="Instance base URLs."
        )
        _switch(
            parser,
            "public",
            ("--public", True, "Allow anonymous calls."),
            ("--private", False, "Require a token (the default for new services)."),
        )
        parser.add_argument(
            "--roles",
            help="Comma-separated roles allowed to call (exact); '' allows every role.",
        )
        parser.add_argument(
            "--rate-limit",
            action="append",
            metavar="ROLE=RATE",
            help="Per-role rate, e.g. client=30/m or anonymous=10/s (repeatable).",
        )
        parser.add_argument("--timeout", type=float, help="Upstream timeout (seconds).")
        parser.add_argument(
            "--retries", type=int, help="Extra tries on another instance."
        )
        parser.add_argument(
            "--health-path",
            help="Path the gateway's health checks GET on each instance (default "
            "/health for a new service); an instance that does not answer 2xx or 3xx "
            "there is taken out of service. '/' suits an upstream with no health "
            "endpoint.",
        )
        parser.add_argument("--description", help="Free text.")
        parser.add_argument(
            "--ca-bundle",
            help="PEM file of the CAs trusted for https:// instances ('' clears it).",
        )
        _switch(parser, "enabled", ("--disable", False, None), ("--enable", True, None))
        _switch(
            parser,
            "sign_identity",
            (
                "--sign-identity",
                True,
                "Send X-XenX-Identity, a signed JWT verifiable with "
                "/.well-known/jwks.json (needs XENX_JWT_ALGORITHM EdDSA or RS256).",
            ),
            ("--no-sign-identity", False, None),
        )
        parser.add_argument(
            "--forward-headers",
            metavar="NAME,NAME",
            help="Comma-separated request headers forwarded from the client besides "
            "the default allowlist ('' clears the list).",
        )
        _switch(
            parser,
            "serves_pages",
            (
                "--serves-pages",
                True,
                "Let browsers run the service's HTML/XML/SVG answers on XenX's "
                "origin (no Content-Security-Policy: sandbox).",
            ),
            ("--no-serves-pages", False, None),
        )

    def handle(self, *args, name, urls, **options):
        fields = {
            switch: options[switch]
            for switch in SWITCHES
            if options[switch] is not None
        }
        if options["forward_headers"] is not None:
            fields["forward_headers"] = [
                h.strip() for h in options["forward_headers"].split(",") if h.strip()
            ]
        if options["roles"] is not None:
            roles = [r.strip() for r in options["roles"].split(",") if r.strip()]
            unknown = sorted(set(roles) - set(Role.values))
            if unknown:
                raise CommandError(
                    f"Unknown role(s) {', '.join(unknown)}; use {', '.join(Role.values)}."
                )
            fields["allowed_roles"] = roles
        if options["rate_limit"]:
            rates = {}
            for item in options["rate_limit"]:
                role, sep, rate = item.partition("=")
                if not sep or role not in RATE_KEYS:
                    raise CommandError(
                        f"--rate-limit {item!r}: use ROLE=RATE with ROLE one of "
                        f"{', '.join(sorted(RATE_KEYS))}."
                    )
                try:
                    parse_rate(rate)
                except ValidationError as exc:
                    raise CommandError(
                        f"--rate-limit {item!r}: {exc.messages[0]}"
                    ) from None
                rates[role] = rate
            fields["rate_limits"] = rates
        for option, field in (
            ("timeout", "timeout_seconds"),
            ("retries", "retries"),
            ("health_path", "health_check_path"),
            ("description", "description"),
            ("ca_bundle", "ca_bundle"),
        ):
            if options[option] is not None:
                fields[field] = options[option]
        try:
            service, created = service_register(name=name, urls=urls, **fields)
        except ValidationFailed as exc:
            raise CommandError(
                f"Service {name!r} not saved: {details_text(exc)}"
            ) from None
        verb = "Created" if created else "Updated"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} service {service.name} with {len(urls)} instance(s): "
                + ", ".join(urls)
            )
        )
        self.stdout.write(
            f"Health checks GET {urls[0].rstrip('/')}{service.health_check_path} (and "
            "the same path on each instance): an instance that does not answer 2xx "
            "or 3xx there is taken out of service (--health-path sets the path)."
        )
