"""Access rules of portal pages. Whether a session may act is
``accounts.policy.session_verdict`` (the same for the admin site); which rows a user sees
is ``organizations.scoping.visible``. These only turn verdicts into pages."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import LazyObject

from accounts.policy import Door, Verdict, session_verdict

ENROL_MESSAGE = (
    "Your organization requires two-factor authentication: set it up to continue."
)


def signed_in_user(request):
    """The signed-in User itself, not django-otp's lazy wrapper around it: services
    may use ``type(user)``."""
    user = request.user
    while isinstance(user, LazyObject):  # django-otp wraps auth's lazy user
        _ = user.pk  # evaluate it
        user = user._wrapped
    return user


def to_login(request, next_url=None):
    query = urlencode({"next": next_url or request.get_full_path()}, safe="/")
    return redirect(f"{reverse('portal:login')}?{query}")


def to_enrolment(request):
    messages.warning(request, ENROL_MESSAGE)
    return redirect("portal:account")


def portal_login_required(view=None, *, allow_mfa_pending=False):
    """Signed-in sessions the policy allows. A session it no longer accepts (second
    factor not passed, revoked, user or organization deactivated) is signed out;
    members of an organization that requires MFA are sent to their account page until
    they enrol (``allow_mfa_pending``: the enrolment pages themselves)."""

    def decorate(fn):
        @wraps(fn)
        def wrapper(request, *args, **kwargs):
            verdict = session_verdict(
                request, door=Door.PORTAL, allow_mfa_pending=allow_mfa_pending
            )
            if verdict == Verdict.SIGN_OUT:
                auth_logout(request)
            if verdict in (Verdict.SIGN_IN, Verdict.SIGN_OUT):
                return to_login(request)
            if verdict == Verdict.ENROL:
                return to_enrolment(request)
            return fn(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def roles_required(*roles):
    """Pages for some roles only. Others get 404, like any object outside their scope
    (README "Organizations, users and documents": no enumeration), so a client cannot
    tell a CPA page exists."""

    def decorate(fn):
        @wraps(fn)
        def wrapper(request, *args, **kwargs):
            if request.user.role not in roles:
                raise Http404
            return fn(request, *args, **kwargs)

        return wrapper

    return decorate
