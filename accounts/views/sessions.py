"""``GET /api/auth/sessions`` and ``DELETE /api/auth/sessions/{id}``: the caller's API
sessions (refresh-token families), thin over ``accounts.sessions``."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import sessions
from ..auth_serializers import ErrorSerializer
from ..models import UserSession

TAG = ["auth"]


class SessionSerializer(serializers.ModelSerializer):
    ip = serializers.IPAddressField(
        source="last_ip", allow_null=True, help_text="Address of the last refresh."
    )
    user_agent = serializers.CharField(
        source="last_user_agent", help_text="User agent of the last refresh."
    )
    last_used_at = serializers.DateTimeField(help_text="The last refresh (or login).")
    current = serializers.SerializerMethodField(
        help_text="This request's token belongs to this session."
    )

    class Meta:
        model = UserSession
        fields = [
            "id",
            "created_at",
            "last_used_at",
            "expires_at",
            "ip",
            "user_agent",
            "login_ip",
            "login_user_agent",
            "current",
            "mfa",
        ]
        read_only_fields = fields

    def get_current(self, obj) -> bool:
        return sessions.is_current(obj, identity=self.context["request"].auth)


class SessionListView(generics.ListAPIView):
    serializer_class = SessionSerializer

    def get_queryset(self):
        return sessions.session_list(user=self.request.user)

    @extend_schema(
        tags=TAG,
        responses={200: SessionSerializer(many=True), 401: ErrorSerializer},
        description="The caller's live API sessions: one per refresh-token family "
        "(a password login and its refreshes), newest use first.",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SessionDetailView(APIView):
    @extend_schema(
        tags=TAG,
        request=None,
        responses={
            204: None,
            401: OpenApiResponse(ErrorSerializer),
            404: OpenApiResponse(ErrorSerializer),
        },
        description="End one session: its refresh token and every access token of "
        "its family are refused (401 `token_revoked`) within a second on every node. "
        "Another user's session, or one already ended, is 404.",
    )
    def delete(self, request, pk):
        session = sessions.session_get(
            user=request.user, pk=pk, kind=UserSession.Kind.API
        )
        sessions.session_end(
            session=session, actor=request.user, request=request._request, via="api"
        )
        return Response(status=204)
