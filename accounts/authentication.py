from django.contrib.auth import get_user_model
from rest_framework import authentication

from core.errors import BEARER_CHALLENGE, TokenRevoked

from .policy import Door, bearer_token, token_identity


class JWTAuthentication(authentication.BaseAuthentication):
    """Bearer access tokens for DRF views, judged by ``policy.token_identity``.

    ``request.auth`` is the ``Identity``; ``request.user`` the User row (DRF views need
    the model to scope their querysets).
    """

    def authenticate(self, request):
        raw = bearer_token(
            authentication.get_authorization_header(request), other_schemes=True
        )
        if raw is None:
            return None
        identity = token_identity(raw, door=Door.API, path=request._request.path)
        user = (
            get_user_model()
            .objects.select_related("organization")
            .filter(pk=identity.user_id)
            .first()
        )
        if user is None or not user.is_active:
            raise TokenRevoked()
        request._request.xenx_user_id = user.pk
        return user, identity

    def authenticate_header(self, request):
        return BEARER_CHALLENGE
