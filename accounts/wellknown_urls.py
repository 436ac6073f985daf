"""/.well-known/... (key discovery)."""

from django.urls import path

from .views import wellknown as v

urlpatterns = [
    path("jwks.json", v.JwksView.as_view(), name="jwks"),
    path(
        "openid-configuration",
        v.OpenIdConfigurationView.as_view(),
        name="openid-configuration",
    ),
]
