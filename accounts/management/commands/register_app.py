from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.oidc import services
from core.roles import Role
from organizations.models import Organization


class _Operator:
    """The operator at the command line: acts as an administrator."""

    pk = None
    role = Role.ADMIN
    organization_id = None


class Command(BaseCommand):
    help = (
        "Register an application that signs its users in with XenX (OpenID Connect), "
        "or a machine client (--client-credentials). Prints the client id and, once, "
        "the client secret (stored hashed: it cannot be shown again)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The name users see on the consent page.")
        parser.add_argument(
            "--redirect-uri",
            action="append",
            default=[],
            help="A redirect URI, registered exactly (repeat for several).",
        )
        parser.add_argument(
            "--post-logout-redirect-uri",
            action="append",
            default=[],
            help="Where end-session may send the user back (repeat for several).",
        )
        parser.add_argument(
            "--public",
            action="store_true",
            help="A public client (no secret; PKCE S256 required).",
        )
        parser.add_argument(
            "--client-credentials",
            action="store_true",
            help="A machine client: tokens with no user, for --services only.",
        )
        parser.add_argument(
            "--services",
            default="",
            help="Comma-separated gateway services a machine client may call.",
        )
        parser.add_argument(
            "--org", help="Slug of the organization whose users it signs in."
        )
        parser.add_argument(
            "--skip-consent", action="store_true", help="Do not show the consent page."
        )

    def handle(self, *args, **opts):
        organization = None
        if opts["org"]:
            organization = Organization.objects.filter(slug=opts["org"]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {opts['org']!r}.")
        machine = opts["client_credentials"]
        grants = ["client_credentials"] if machine else ["authorization_code"]
        try:
            app, secret = services.application_create(
                actor=_Operator(),
                name=opts["name"],
                client_type="public" if opts["public"] else "confidential",
                grant_types=grants,
                redirect_uris=opts["redirect_uri"],
                post_logout_redirect_uris=opts["post_logout_redirect_uri"],
                skip_consent=opts["skip_consent"],
                organization=organization,
                allowed_services=[s for s in opts["services"].split(",") if s],
            )
        except ValidationError as exc:
            details = "; ".join(
                f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()
            )
            raise CommandError(details) from None
        self.stdout.write(f"client_id: {app.client_id}")
        if secret:
            self.stdout.write(f"client_secret: {secret}")
            self.stdout.write("The secret is shown only now; store it safely.")
