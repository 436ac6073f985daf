from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard_view, name="dashboard"),
    path("login", views.login_view, name="login"),
    path("login/verify", views.login_verify_view, name="login-verify"),
    path("logout", views.logout_view, name="logout"),
    path("signup/<str:token>", views.signup_view, name="signup"),
    path("register", views.register_view, name="register"),
    path("verify-email", views.verify_email_view, name="verify-email"),
    path("password-reset", views.password_reset_view, name="password-reset"),
    path(
        "password-reset/<str:uid>/<str:token>",
        views.password_reset_confirm_view,
        name="password-reset-confirm",
    ),
    path("email/confirm", views.email_confirm_view, name="email-confirm"),
    path("clients", views.client_list_view, name="clients"),
    path("clients/invite", views.client_invite_view, name="client-invite"),
    path("clients/<int:pk>", views.client_detail_view, name="client-detail"),
    path(
        "invitations/<int:pk>/resend",
        views.invitation_resend_view,
        name="invitation-resend",
    ),
    path(
        "invitations/<int:pk>/revoke",
        views.invitation_revoke_view,
        name="invitation-revoke",
    ),
    path("documents", views.document_list_view, name="documents"),
    path("documents/upload", views.document_upload_view, name="document-upload"),
    path(
        "documents/<int:pk>/download",
        views.document_download_view,
        name="document-download",
    ),
    path("account", views.account_view, name="account"),
    path("account/password", views.password_change_view, name="password-change"),
    path("account/email", views.email_change_view, name="email-change"),
    path(
        "account/sessions/<int:pk>/end",
        views.session_end_view,
        name="session-end",
    ),
    path("account/mfa/totp", views.totp_begin_view, name="totp-begin"),
    path("account/mfa/totp/confirm", views.totp_confirm_view, name="totp-confirm"),
    path("account/mfa/disable", views.mfa_disable_view, name="mfa-disable"),
    path("account/mfa/backup-codes", views.backup_codes_view, name="backup-codes"),
]
