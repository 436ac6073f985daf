from rest_framework import serializers

from core.roles import Role

from .models import Document, Invitation, Organization


class OrganizationSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(max_length=100, required=False)

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "is_active", "mfa_required", "created_at"]
        read_only_fields = ["id", "created_at"]


class OrganizationCreateSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(max_length=100, required=False)

    class Meta:
        model = Organization
        fields = ["name", "slug", "mfa_required"]

    def validate_slug(self, value):
        if Organization.objects.filter(slug=value).exists():
            raise serializers.ValidationError("This slug is taken.")
        return value


class OrganizationUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["name", "slug", "is_active", "mfa_required"]
        extra_kwargs = {field: {"required": False} for field in fields}

    def validate_slug(self, value):
        taken = Organization.objects.filter(slug=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("This slug is taken.")
        return value


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.CLIENT)


class InvitationCreatedSerializer(serializers.ModelSerializer):
    """The one answer that carries the token: it is not stored in clear."""

    token = serializers.SerializerMethodField()
    email_sent = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "token",
            "email",
            "role",
            "organization",
            "expires_at",
            "email_sent",
        ]
        read_only_fields = fields

    def get_token(self, invitation) -> str:
        return self.context["token"]

    def get_email_sent(self, invitation) -> bool:
        return getattr(invitation, "email_sent", True)


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(
        help_text="pending, accepted, expired or revoked."
    )
    invited_by = serializers.SerializerMethodField(help_text="The inviter's user id.")

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "organization",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
        ]
        read_only_fields = fields

    def get_status(self, invitation) -> str:
        return invitation.status

    def get_invited_by(self, invitation) -> int | None:
        return invitation.created_by_id


class DocumentSerializer(serializers.ModelSerializer):
    owner_email = serializers.EmailField(source="owner.email", read_only=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "owner",
            "owner_email",
            "original_filename",
            "content_type",
            "size",
            "sha256",
            "uploaded_by",
            "created_at",
        ]
        read_only_fields = fields


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(max_length=255, use_url=False)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    owner = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="The client the document belongs to; a client uploads for itself.",
    )
