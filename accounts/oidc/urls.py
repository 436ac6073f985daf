from django.urls import path

from . import views

app_name = "oidc"

urlpatterns = [
    path("token", views.token_view, name="token"),
    path("revoke", views.revoke_view, name="revoke"),
    path("introspect", views.introspect_view, name="introspect"),
    path("userinfo", views.userinfo_view, name="userinfo"),
]
