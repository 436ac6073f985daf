"""/api/auth/... (identity: login, tokens, MFA, password)."""

from django.urls import path

from . import auth_views

urlpatterns = [
    path("me", auth_views.MeView.as_view(), name="auth-me"),
]
