from django.urls import include, path

from .oidc.api import ApplicationDetailView, ApplicationListView
from .views.audit import AuditEventListView

urlpatterns = [
    path("auth/", include("accounts.auth_urls")),
    path("audit-events", AuditEventListView.as_view(), name="audit-events"),
    path("apps", ApplicationListView.as_view(), name="apps"),
    path("apps/<str:client_id>", ApplicationDetailView.as_view(), name="app-detail"),
    path("", include("accounts.user_urls")),
]
