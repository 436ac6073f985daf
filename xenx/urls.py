from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import health

urlpatterns = [
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # The only two API paths with a trailing slash (they are pages, not resources).
    path("api/schema", RedirectView.as_view(url="/api/schema/", query_string=True)),
    path("api/docs", RedirectView.as_view(url="/api/docs/", query_string=True)),
    path(".well-known/", include("accounts.wellknown_urls")),
    path("api/", include("accounts.urls")),
    path("api/", include("organizations.urls")),
    path("admin/", admin.site.urls),
    path("portal", RedirectView.as_view(url="/portal/", permanent=False)),
    path("portal/", include("portal.urls")),
    # A visitor of the bare address is a person: the portal (which signs them in).
    path("", RedirectView.as_view(url="/portal/", permanent=False), name="root"),
    # The gateway's catch-all must stay last: /api/{service}/{path}.
    path("", include("gateway.urls")),
]

handler404 = "core.error_views.handler404"
handler500 = "core.error_views.handler500"
