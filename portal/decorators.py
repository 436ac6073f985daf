"""Access rules of portal pages. Which rows a user sees is decided by
``organizations.scoping.visible``; these only decide who may open a page at all."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse

from accounts.selectors import user_has_confirmed_totp

from .admin_site import passed_second_factor


def _to_login(request):
    query = urlencode({"next": request.get_full_path()}, safe="/")
    return redirect(f"{reverse('portal:login')}?{query}")


def portal_login_required(view=None, *, allow_mfa_pending=False):
    """Signed-in users only; a session that did not pass the user's second factor (the
    device was confirmed in another session) must sign in again. Members of an
    organization that requires MFA are sent to their account page until they enrol."""

    def decorate(fn):
        @wraps(fn)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return _to_login(request)
            if not passed_second_factor(request):
                auth_logout(request)
                return _to_login(request)
            org = user.organization
            if (
                not allow_mfa_pending
                and org is not None
                and org.mfa_required
                and not user_has_confirmed_totp(user)
            ):
                messages.warning(
                    request,
                    "Your organization requires two-factor authentication: "
                    "set it up to continue.",
                )
                return redirect("portal:account")
            return fn(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def roles_required(*roles):
    """Pages for some roles only. Others get 404, like any object outside their scope
    (SPEC §2: no enumeration), so a client cannot tell a CPA page exists."""

    def decorate(fn):
        @wraps(fn)
        def wrapper(request, *args, **kwargs):
            if request.user.role not in roles:
                raise Http404
            return fn(request, *args, **kwargs)

        return wrapper

    return decorate
