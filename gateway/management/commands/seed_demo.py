import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.passwords import password_set
from accounts.services import user_create
from core.roles import Role
from gateway.services import service_seed_demo
from organizations.models import Organization
from organizations.services import organization_create

DEMO_ORG_SLUG = "demo"
DEMO_USERS = [
    ("admin@demo.xenx.local", Role.ADMIN, "Ada", "Admin"),
    ("staff@demo.xenx.local", Role.STAFF, "Sam", "Staff"),
    ("cpa@demo.xenx.local", Role.CPA, "Casey", "CPA"),
    ("client@demo.xenx.local", Role.CLIENT, "Chris", "Client"),
]


class Command(BaseCommand):
    help = (
        "Create demo data (idempotent): an organization, one user of each role and a demo "
        "service. Prints the passwords of users it creates."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Give existing demo users new passwords and print them.",
        )

    @transaction.atomic
    def handle(self, *args, reset_passwords, **options):
        User = get_user_model()
        org = Organization.objects.filter(slug=DEMO_ORG_SLUG).first()
        if org is None:
            org = organization_create(name="Demo CPA Firm", slug=DEMO_ORG_SLUG)
            self.stdout.write(f"Created organization {org.name} (slug {org.slug}).")
        else:
            self.stdout.write(f"Organization {org.name} exists.")
        for email, role, first, last in DEMO_USERS:
            password = secrets.token_urlsafe(10)
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user_create(
                    email=email,
                    role=role,
                    organization=org,
                    password=password,
                    first_name=first,
                    last_name=last,
                    email_verified=True,
                )
                self.stdout.write(f"  {role:<7} {email}  password: {password}")
            elif reset_passwords:
                password_set(user=user, password=password, actor=None)
                self.stdout.write(f"  {role:<7} {email}  password: {password} (reset)")
            else:
                self.stdout.write(
                    f"  {role:<7} {email}  exists (use --reset-passwords for a new one)"
                )
        self._seed_services()
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _seed_services(self):
        """The demo service (gateway.services.service_seed_demo)."""
        message = service_seed_demo()
        if message:
            self.stdout.write(message)
