"""The OpenID provider's pages (README "Sign in with XenX"): authorization with its
consent page, and the end-session page. django-oauth-toolkit runs the protocol; the
portal decides who is signed in (``accounts.policy.session_verdict``: the portal's own
login with its second factor, throttles and audit, and MFA enrolment first where the
organization requires it) and who may sign in where (``accounts.oidc.rules``)."""

from __future__ import annotations

import re
from functools import wraps
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import logout as auth_logout
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from oauth2_provider import views as dot
from oauth2_provider.exceptions import OAuthToolkitError

from accounts import login
from accounts.models import Application
from accounts.oidc import services
from accounts.oidc.rules import may_sign_in
from accounts.policy import (
    Door,
    Verdict,
    session_passed_second_factor,
    session_started,
    session_verdict,
)

from ..decorators import signed_in_user, to_enrolment, to_login
from ..services import pending_login


def _amr(request) -> list[str]:
    verified = getattr(request.user, "is_verified", None)
    return ["pwd", "otp"] if verified is not None and verified() else ["pwd"]


@method_decorator(never_cache, name="dispatch")
class AuthorizeView(dot.AuthorizationView):
    template_name = "portal/authorize.html"

    def dispatch(self, request, *args, **kwargs):
        verdict = session_verdict(request, door=Door.PORTAL)
        if verdict == Verdict.SIGN_OUT:
            auth_logout(request)
        if verdict in (Verdict.SIGN_IN, Verdict.SIGN_OUT):
            # Only a request DOT would accept is worth a sign-in: a bad client or
            # redirect URI is shown its error page first (and never redirected).
            try:
                self.oauth2_data = {}
                self.validate_authorization_request(request)
            except OAuthToolkitError as error:
                return self.error_response(error, application=None)
            return to_login(request)
        if verdict == Verdict.ENROL:
            return to_enrolment(request)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        app = self.oauth2_data.get("application")
        if response.status_code == 200 and app is not None:
            if not may_sign_in(signed_in_user(request), app):
                return not_for_you(request, app)
            allow_form_to(response, app.redirect_uris.split())
        return response

    def create_authorization_response(self, request, scopes, credentials, allow):
        # What the ID tokens of this sign-in say about it (auth_time, amr).
        credentials["xenx_auth"] = {
            "auth_time": session_started(request),
            "amr": _amr(request) if session_passed_second_factor(request) else [],
        }
        return super().create_authorization_response(
            request, scopes, credentials, allow
        )


_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


def allow_form_to(response, uris) -> None:
    """The consent and sign-out forms answer with a redirect to the application, and
    a browser applies the page's ``form-action`` to that redirect: the registered
    URIs' origins are added to the portal's policy on these pages only."""
    origins = set()
    for uri in uris:
        parts = urlsplit(uri)
        origin = f"{parts.scheme}://{parts.netloc}"
        if _ORIGIN_RE.match(origin):
            origins.add(origin)
    if origins:
        extra = " ".join(sorted(origins))
        response["Content-Security-Policy"] = settings.XENX_CSP.replace(
            "form-action 'self'", f"form-action 'self' {extra}"
        )


def application_of(next_url) -> Application | None:
    """The application a sign-in continues to, when ``next`` is the authorization
    page (README "Sign in with XenX")."""
    if not isinstance(next_url, str):
        return None
    parts = urlsplit(next_url)
    if parts.path != reverse("portal:authorize"):
        return None
    client_id = parse_qs(parts.query).get("client_id", [""])[0][:255]
    return Application.objects.filter(client_id=client_id, enabled=True).first()


def continues_to_application(view):
    """For the sign-in pages: when the sign-in continues to an application, the
    redirect chain their form starts may end at its redirect URI (consent skipped or
    remembered), so the form may go there (``allow_form_to``)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            next_url = request.GET.get("next") or request.POST.get("next")
            if not next_url:
                next_url = pending_login(request)[1]
            app = application_of(next_url)
            if app is not None:
                allow_form_to(response, app.redirect_uris.split())
        return response

    return wrapper


def not_for_you(request, app):
    return render(
        request,
        "portal/authorize_denied.html",
        {"application": app},
        status=403,
    )


@method_decorator(never_cache, name="dispatch")
class EndSessionView(dot.RPInitiatedLogoutView):
    """RP-initiated logout: the portal session ends (audited like the portal's sign
    out) and so does the user's sign-in at that application."""

    template_name = "portal/end_session.html"

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        app = (getattr(response, "context_data", None) or {}).get("application")
        if response.status_code == 200 and isinstance(app, Application):
            allow_form_to(response, app.post_logout_redirect_uris.split())
        return response

    def do_logout(
        self,
        application=None,
        post_logout_redirect_uri=None,
        state=None,
        token_user=None,
    ):
        user = token_user or (
            signed_in_user(self.request) if self.request.user.is_authenticated else None
        )
        if user is not None and isinstance(application, Application):
            services.sign_out(user=user, app=application, request=self.request)
        login.session_logout(request=self.request)
        return super().do_logout(application, post_logout_redirect_uri, state, None)

    # django-oauth-toolkit deletes every token of the user at every application;
    # XenX ends only this application's (``services.sign_out`` above).
    token_deletion_client_types: list = []
    token_deletion_grant_types: list = []


authorize_view = AuthorizeView.as_view()
end_session_view = EndSessionView.as_view()
