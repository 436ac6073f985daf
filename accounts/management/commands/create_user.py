import secrets

from django.core.management.base import BaseCommand, CommandError

from accounts.services import user_create
from core.errors import ValidationFailed, details_text
from core.roles import ORG_REQUIRED_ROLES, Role
from organizations.models import Organization


class Command(BaseCommand):
    help = "Create a user with a role. Prints the password when one is generated."

    def add_arguments(self, parser):
        parser.add_argument("email", help="Login email (case-insensitive, unique).")
        parser.add_argument(
            "--role", required=True, choices=Role.values, help="The user's role."
        )
        parser.add_argument(
            "--org",
            dest="org_slug",
            help="Slug of the organization (required for staff and cpa).",
        )
        parser.add_argument(
            "--password",
            help="Password; a random one is generated and printed if omitted.",
        )
        parser.add_argument("--first-name", default="", help="First name.")
        parser.add_argument("--last-name", default="", help="Last name.")

    def handle(
        self, *args, email, role, org_slug, password, first_name, last_name, **opts
    ):
        organization = None
        if org_slug:
            organization = Organization.objects.filter(slug=org_slug).first()
            if organization is None:
                raise CommandError(f"No organization with slug {org_slug!r}.")
        elif role in ORG_REQUIRED_ROLES:
            raise CommandError(f"A {role} user needs --org SLUG.")
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(12)
        try:
            user = user_create(
                email=email,
                role=role,
                organization=organization,
                password=password,
                first_name=first_name,
                last_name=last_name,
                email_verified=True,
            )
        except ValidationFailed as exc:
            raise CommandError(
                f"Could not create the user: {details_text(exc)}"
            ) from None
        self.stdout.write(
            self.style.SUCCESS(f"Created {user.role} {user.email} (id {user.pk}).")
        )
        if generated:
            self.stdout.write(f"Password: {password}")
