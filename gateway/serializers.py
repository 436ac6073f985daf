from rest_framework import serializers

from . import validators
from .models import Service
from .services import SERVICE_FIELDS

_UPSTREAM = SERVICE_FIELDS.index("health_check_path")


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
        # The editable fields are the service's (one list); in the API's order,
        # instances come after who may call.
        fields = [
            "name",
            *SERVICE_FIELDS[:_UPSTREAM],
            "instances",
            *SERVICE_FIELDS[_UPSTREAM:],
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
