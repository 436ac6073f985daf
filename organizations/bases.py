"""The base of the API viewsets that serve a model's rows (users, organizations,
documents): their queryset IS ``scoping.visible(request.user, model)``, so a row outside
it answers 404 and a new viewset cannot forget the scoping (the isolation matrix checks
their routes). ``list`` (filtered, paginated) and ``retrieve`` are the same for all. Views of other shapes (the audit events, the portal's pages, Django
admin) call ``visible`` themselves; a user's own sessions are its own rows."""

from __future__ import annotations

from rest_framework import viewsets
from rest_framework.response import Response

from core.filters import apply_filters

from .scoping import visible


class ScopedViewSet(viewsets.GenericViewSet):
    scoped_model = None  # the model whose visible rows this view serves
    filterset_class = None  # its list filters (django-filter), shared with the portal

    def get_queryset(self):
        return visible(self.request.user, self.scoped_model)

    def list(self, request):
        qs = self.list_filter(self.get_queryset())
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self.get_object()).data)

    def list_filter(self, qs):
        """Narrow the visible rows by query parameters (list only)."""
        if self.filterset_class is None:
            return qs
        return apply_filters(self.filterset_class, self.request.query_params, qs)
