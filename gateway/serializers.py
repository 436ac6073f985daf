from rest_framework import serializers

from . import validators
from .models import Service


class InstanceSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    url = serializers.CharField(
        max_length=500, validators=[validators.validate_instance_url]
    )
    weight = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    enabled = serializers.BooleanField(default=True)
    healthy = serializers.SerializerMethodField()

    def get_healthy(self, obj) -> bool:
        health = self.context.get("health") or {}
        return bool(health.get(obj.id, False))


class ServiceSerializer(serializers.ModelSerializer):
    instances = InstanceSerializer(many=True, required=False)

    class Meta:
        model = Service
        fields = [
            "name",
            "description",
            "enabled",
            "public",
            "allowed_roles",
            "instances",
            "health_check_path",
            "timeout_seconds",
            "retries",
            "rate_limits",
            "max_body_bytes",
            "allowed_content_types",
            "forward_authorization",
            "ca_bundle",
            "sign_identity",
            "forward_headers",
            "serves_pages",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_instances(self, value):
        urls = [item["url"] for item in value]
        if len(urls) != len(set(urls)):
            raise serializers.ValidationError("An instance URL is listed twice.")
        return value

    def validate_name(self, value):
        if self.instance is not None and value != self.instance.name:
            raise serializers.ValidationError("A service cannot be renamed.")
        return value
