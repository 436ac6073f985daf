"""/api/services and /api/services/{name}: admins manage, staff read (README "Gateway")."""

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.errors import NotFound
from core.roles import Role

from .. import selectors, services
from ..serializers import ServiceSerializer


class AdminWritesStaffReads(permissions.BasePermission):
    def has_permission(self, request, view):
        role = getattr(request.user, "role", None)
        if request.method in permissions.SAFE_METHODS:
            return role in (Role.ADMIN, Role.STAFF)
        return role == Role.ADMIN


class _ServiceView(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, AdminWritesStaffReads]
    serializer_class = ServiceSerializer

    def get_queryset(self):
        return selectors.service_list()

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["health"] = self._health
        return context

    _health: dict = {}

    def _with_health(self, services_):
        instances = [i for s in services_ for i in s.instances.all()]
        self._health = selectors.instance_health(instances)


class ServiceListView(_ServiceView):
    @extend_schema(operation_id="services_list", responses=ServiceSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        self._with_health(page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(responses={201: ServiceSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        instances = data.pop("instances", [])
        service = services.service_create(
            instances=instances, actor=request.user, request=request, **data
        )
        service = selectors.service_get(service.name)
        self._with_health([service])
        return Response(
            self.get_serializer(service).data, status=status.HTTP_201_CREATED
        )


class ServiceDetailView(_ServiceView):
    def _get(self, name):
        service = selectors.service_get(name)
        if service is None:
            raise NotFound(f"No service named {name!r}.", code="service_not_found")
        return service

    def get(self, request, name):
        service = self._get(name)
        self._with_health([service])
        return Response(self.get_serializer(service).data)

    def patch(self, request, name):
        service = self._get(name)
        serializer = self.get_serializer(service, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("name", None)
        instances = data.pop("instances", None)
        services.service_update(
            service=service,
            instances=instances,
            actor=request.user,
            request=request,
            **data,
        )
        service = selectors.service_get(name)
        self._with_health([service])
        return Response(self.get_serializer(service).data)

    def delete(self, request, name):
        service = self._get(name)
        services.service_delete(service=service, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
