from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from organizations.models import Organization
from organizations.services import organization_create


class Command(BaseCommand):
    help = (
        "Create an organization (a tenant). Prints its id and slug. A name or slug "
        "already taken is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Display name, e.g. 'Acme Tax LLP'.")
        parser.add_argument(
            "--slug", help="URL-safe identifier; derived from the name."
        )
        parser.add_argument(
            "--mfa-required",
            action="store_true",
            help="Members must enrol TOTP before they can use the API.",
        )

    def handle(self, *args, name, slug, mfa_required, **options):
        name = name.strip()
        if not name:
            raise CommandError("The organization name must not be empty.")
        same = Organization.objects.filter(name__iexact=name).first()
        if same is not None:
            raise CommandError(
                f"An organization named {same.name!r} already exists "
                f"(id {same.pk}, slug {same.slug})."
            )
        if slug is not None:
            if not slug or slugify(slug) != slug:
                raise CommandError(
                    f"Slug {slug!r} is not valid: use lowercase letters, digits and '-'."
                )
            if Organization.objects.filter(slug=slug).exists():
                raise CommandError(
                    f"An organization with slug {slug!r} already exists."
                )
        org = organization_create(name=name, slug=slug, mfa_required=mfa_required)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created organization {org.name!r} (id {org.pk}, slug {org.slug})."
            )
        )
