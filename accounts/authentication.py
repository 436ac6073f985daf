from django.contrib.auth import get_user_model
from rest_framework import authentication

from xenx.errors import TokenRevoked

from .tokens import authenticate_access_token


class JWTAuthentication(authentication.BaseAuthentication):
    """Bearer access tokens for DRF views, checked by ``authenticate_access_token``.

    ``request.auth`` is the ``Identity``; ``request.user`` the User row (DRF views need
    the model to scope their querysets).
    """

    keyword = b"bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            from xenx.errors import InvalidToken

            raise InvalidToken("The Authorization header must be 'Bearer <token>'.")
        identity = authenticate_access_token(
            parts[1].decode("latin-1"), path=request._request.path
        )
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
        return 'Bearer realm="api"'
