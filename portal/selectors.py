"""Portal reads. Every query starts from ``organizations.scoping.visible``."""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Q

from organizations.scoping import visible
from xenx.roles import Role


def document_model():
    return apps.get_model("organizations", "Document")


def clients_of(user, *, search: str = ""):
    """Client users ``user`` may see, optionally filtered by a search string."""
    qs = visible(user, get_user_model()).filter(role=Role.CLIENT)
    search = search.strip()
    if search:
        qs = qs.filter(
            Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    return qs.order_by("last_name", "first_name", "email", "id")


def documents_of(user, *, search: str = "", owner=None):
    Document = document_model()
    qs = visible(user, Document).select_related("owner")
    if owner is not None:
        qs = qs.filter(owner=owner)
    search = search.strip()
    if search:
        qs = qs.filter(
            Q(title__icontains=search)
            | Q(original_filename__icontains=search)
            | Q(owner__email__icontains=search)
        )
    return qs.order_by("-created_at", "-pk")


def dashboard(user) -> dict:
    documents = documents_of(user)
    can_see_clients = user.role != Role.CLIENT
    return {
        "organization": user.organization,
        "client_count": clients_of(user).count() if can_see_clients else None,
        "document_count": documents.count(),
        "recent_documents": list(documents[:5]),
    }


def pending_invitations(user, *, limit: int = 10):
    """Client invitations of ``user``'s scope not yet used and not expired."""
    from django.utils import timezone

    Invitation = apps.get_model("organizations", "Invitation")
    return list(
        visible(user, Invitation)
        .filter(
            role=Role.CLIENT, accepted_at__isnull=True, expires_at__gt=timezone.now()
        )
        .order_by("-created_at")[:limit]
    )
