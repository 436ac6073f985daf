"""/api/auth/... (identity: login, tokens, MFA, password)."""

from django.urls import path

from .views import auth as v
from .views import sessions as session_views

urlpatterns = [
    path("register", v.RegisterView.as_view(), name="auth-register"),
    path("verify-email", v.VerifyEmailView.as_view(), name="auth-verify-email"),
    path("login", v.LoginView.as_view(), name="auth-login"),
    path("mfa/verify", v.MfaVerifyView.as_view(), name="auth-mfa-verify"),
    path("token/refresh", v.RefreshView.as_view(), name="auth-token-refresh"),
    path("logout", v.LogoutView.as_view(), name="auth-logout"),
    path("logout-all", v.LogoutAllView.as_view(), name="auth-logout-all"),
    path("me", v.MeView.as_view(), name="auth-me"),
    path(
        "password/change", v.PasswordChangeView.as_view(), name="auth-password-change"
    ),
    path("password/reset", v.PasswordResetView.as_view(), name="auth-password-reset"),
    path(
        "password/reset/confirm",
        v.PasswordResetConfirmView.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("email/change", v.EmailChangeView.as_view(), name="auth-email-change"),
    path("email/confirm", v.EmailConfirmView.as_view(), name="auth-email-confirm"),
    path("mfa/totp", v.TotpView.as_view(), name="auth-mfa-totp"),
    path("mfa/totp/confirm", v.TotpConfirmView.as_view(), name="auth-mfa-totp-confirm"),
    path("mfa/backup-codes", v.BackupCodesView.as_view(), name="auth-mfa-backup-codes"),
    path("sessions", session_views.SessionListView.as_view(), name="auth-sessions"),
    path(
        "sessions/<str:pk>",
        session_views.SessionDetailView.as_view(),
        name="auth-session",
    ),
]
