"""``/portal/account/sessions/{id}/end`` (POST): sign out one of the user's sessions
(API token family or portal session) from the account page; listed there by
``account_sessions``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts import sessions
from core.errors import NotFound

from ..decorators import portal_login_required, signed_in_user


def account_sessions(request, user) -> dict:
    """Template context of the account page's sessions card."""
    api = list(sessions.session_list(user=user))
    portal = sessions.portal_sessions(request=request, user=user)
    for row in api + portal:
        row.current = sessions.is_current(row, request=request)
    return {
        "session_groups": [
            ("Apps and API clients", api),
            ("Portal and admin", portal),
        ]
    }


@require_POST
@portal_login_required(allow_mfa_pending=True)
def session_end_view(request, pk):
    try:
        session = sessions.session_get(user=signed_in_user(request), pk=pk, kind=None)
    except NotFound:
        raise Http404 from None
    current = sessions.is_current(session, request=request)
    sessions.session_end(
        session=session, actor=signed_in_user(request), request=request, via="portal"
    )
    if current:
        auth_logout(request)
        return redirect("portal:login")
    messages.success(request, "That session is signed out.")
    return redirect("portal:account")
