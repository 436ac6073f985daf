"""Portal reads. Every query starts from ``organizations.scoping.visible``."""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth import get_user_model

from accounts.filters import UserFilter
from core.filters import apply_filters
from core.roles import Role
from organizations.filters import DocumentFilter
from organizations.scoping import visible


def document_model():
    return apps.get_model("organizations", "Document")


def clients_of(user, *, search: str = ""):
    """Client users ``user`` may see, optionally searched (the API's user filters)."""
    qs = apply_filters(
        UserFilter,
        {"role": Role.CLIENT, "search": search},
        visible(user, get_user_model()),
    )
    return qs.order_by("last_name", "first_name", "email", "id")


def documents_of(user, *, search: str = "", owner=None):
    """Documents ``user`` may see (the API's document filters)."""
    params = {"search": search, "owner": getattr(owner, "pk", "")}
    qs = apply_filters(DocumentFilter, params, visible(user, document_model()))
    return qs.select_related("owner").order_by("-created_at", "-pk")


def dashboard(user) -> dict:
    documents = documents_of(user)
    can_see_clients = user.role != Role.CLIENT
    return {
        "organization": user.organization,
        "client_count": clients_of(user).count() if can_see_clients else None,
        "document_count": documents.count(),
        "recent_documents": list(documents[:5]),
    }


def invitations_of(user):
    """The invitations ``user`` may see that can still be used (or resent)."""
    Invitation = apps.get_model("organizations", "Invitation")
    return visible(user, Invitation).filter(
        accepted_at__isnull=True, revoked_at__isnull=True
    )


def pending_invitations(user, *, limit: int = 20):
    """Invitations of ``user``'s scope not used nor withdrawn (expired ones too: they
    can be resent), newest first."""
    return list(
        invitations_of(user)
        .select_related("created_by")
        .order_by("-created_at")[:limit]
    )
