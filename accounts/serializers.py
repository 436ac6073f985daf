from django.contrib.auth import get_user_model
from rest_framework import serializers

from organizations.models import Organization

from .selectors import user_has_confirmed_totp


class OrganizationRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name"]


class UserSerializer(serializers.ModelSerializer):
    """The ``user`` object of README "Identity"."""

    organization = OrganizationRefSerializer(read_only=True, allow_null=True)
    mfa_enabled = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "role",
            "organization",
            "is_active",
            "email_verified",
            "mfa_enabled",
            "date_joined",
            "last_login",
        ]
        read_only_fields = fields

    def get_mfa_enabled(self, user) -> bool:
        return user_has_confirmed_totp(user)
