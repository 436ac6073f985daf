"""Writes about organizations."""

from django.db import transaction
from django.utils.text import slugify

from .models import Organization


def unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def organization_create(
    *,
    name: str,
    slug: str | None = None,
    mfa_required: bool = False,
    actor=None,
    request=None,
) -> Organization:
    from accounts import audit

    org = Organization.objects.create(
        name=name, slug=slug or unique_slug(name), mfa_required=mfa_required
    )
    audit.record(
        audit.Action.ORGANIZATION_CREATED,
        actor=actor,
        target=org,
        organization=org,
        request=request,
    )
    return org
