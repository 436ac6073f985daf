from django.urls import include, path

from .views.audit import AuditEventListView

urlpatterns = [
    path("auth/", include("accounts.auth_urls")),
    path("audit-events", AuditEventListView.as_view(), name="audit-events"),
    path("", include("accounts.user_urls")),
]
