"""Portal pages. Thin: forms validate, services write, selectors read (all scoped by
``organizations.scoping.visible``); anything outside the caller's scope is 404. Whether
the session may act at all is ``accounts.policy`` (``decorators``)."""

from .account import (
    account_view,
    backup_codes_view,
    email_change_view,
    mfa_disable_view,
    password_change_view,
    totp_begin_view,
    totp_confirm_view,
)
from .clients import (
    client_detail_view,
    client_invite_view,
    client_list_view,
    dashboard_view,
    invitation_resend_view,
    invitation_revoke_view,
)
from .documents import (
    document_download_view,
    document_list_view,
    document_upload_view,
)
from .lifecycle import (
    email_confirm_view,
    password_reset_confirm_view,
    password_reset_view,
    register_view,
    signup_view,
    verify_email_view,
)
from .sessions import session_end_view
from .sign_in import login_verify_view, login_view, logout_view

__all__ = [
    "account_view",
    "backup_codes_view",
    "client_detail_view",
    "client_invite_view",
    "client_list_view",
    "dashboard_view",
    "document_download_view",
    "document_list_view",
    "document_upload_view",
    "email_change_view",
    "email_confirm_view",
    "invitation_resend_view",
    "invitation_revoke_view",
    "login_verify_view",
    "login_view",
    "logout_view",
    "mfa_disable_view",
    "password_change_view",
    "password_reset_confirm_view",
    "password_reset_view",
    "register_view",
    "session_end_view",
    "signup_view",
    "totp_begin_view",
    "totp_confirm_view",
    "verify_email_view",
]
