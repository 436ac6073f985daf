"""The gateway's routes: /health, /metrics, /api/services and the catch-all
/api/{service}/{path} (included last at the root of xenx/urls.py)."""

from django.urls import path, re_path

from . import api, views
from .proxy import proxy_view

urlpatterns = [
    path("health", views.health, name="health"),
    path("metrics", views.metrics_view, name="metrics"),
    path("api/services", api.ServiceListView.as_view(), name="service-list"),
    path(
        "api/services/<str:name>",
        api.ServiceDetailView.as_view(),
        name="service-detail",
    ),
    re_path(
        r"^api/(?P<service>[^/]+)(?P<rest>/.*)?$", proxy_view, name="gateway-proxy"
    ),
]
