"""The gateway's routes: /health, /metrics, /api/services and the catch-all
/api/{service}/{path} (included last at the root of xenx/urls.py)."""

from django.urls import path, re_path

from .proxy import proxy_view
from .views import monitoring, services

urlpatterns = [
    path("health", monitoring.health, name="health"),
    path("metrics", monitoring.metrics_view, name="metrics"),
    path("api/services", services.ServiceListView.as_view(), name="service-list"),
    path(
        "api/services/<str:name>",
        services.ServiceDetailView.as_view(),
        name="service-detail",
    ),
    re_path(
        r"^api/(?P<service>[^/]+)(?P<rest>/.*)?$", proxy_view, name="gateway-proxy"
    ),
]
