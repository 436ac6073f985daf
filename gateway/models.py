"""The service registry: named back ends and their instances (README "Gateway").

Live health is not a column: it is shared state in the cache (``gateway.prober``), so
every worker and node agrees and a failing instance costs no database write.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from . import validators
from .assertions import validate_sign_identity
from .headers import validate_forward_headers


def _default_list():
    return []


def _default_dict():
    return {}


class Service(models.Model):
    name = models.CharField(
        max_length=63, unique=True, validators=[validators.validate_service_name]
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    public = models.BooleanField(
        default=False, help_text="Anonymous calls allowed (no token needed)."
    )
    allowed_roles = models.JSONField(
        default=_default_list,
        blank=True,
        validators=[validators.validate_roles],
        help_text='Roles allowed to call, exact; empty = every authenticated role. e.g. ["cpa", "staff"]',
    )
    health_check_path = models.CharField(
        max_length=255, default="/health", validators=[validators.validate_health_path]
    )
    timeout_seconds = models.FloatField(
        default=30.0, validators=[MinValueValidator(0.1), MaxValueValidator(3600)]
    )
    retries = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(10)]
    )
    rate_limits = models.JSONField(
        default=_default_dict,
        blank=True,
        validators=[validators.validate_rate_limits],
        help_text='Per role (or "anonymous") overrides of XENX_RATE_LIMITS, e.g. {"client": "30/m"}.',
    )
    max_body_bytes = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Empty: XENX_GATEWAY_MAX_BODY_BYTES.",
    )
    allowed_content_types = models.JSONField(
        default=_default_list,
        blank=True,
        validators=[validators.validate_content_types],
        help_text='Request media types accepted; empty = any. e.g. ["application/json", "image/*"]',
    )
    forward_authorization = models.BooleanField(
        default=False, help_text="Pass the client's Authorization header upstream."
    )
    ca_bundle = models.CharField(
        max_length=500,
        blank=True,
        default="",
        validators=[validators.validate_ca_bundle],
        help_text="Absolute path of a PEM file with the CAs trusted for this service's "
        "https:// instances; empty = XENX_GATEWAY_CA_BUNDLE, else the system's CAs.",
    )
    sign_identity = models.BooleanField(
        default=False,
        validators=[validate_sign_identity],
        help_text="Send X-XenX-Identity, a JWT the service verifies with "
        "/.well-known/jwks.json (needs XENX_JWT_ALGORITHM EdDSA or RS256).",
    )
    forward_headers = models.JSONField(
        default=_default_list,
        blank=True,
        validators=[validate_forward_headers],
        help_text="Request headers forwarded from the client besides the default "
        'allowlist (README "Gateway"), e.g. ["X-Api-Version", "Idempotency-Key"].',
    )
    serves_pages = models.BooleanField(
        default=False,
        help_text="Let browsers run this service's HTML, XML and SVG answers on "
        "XenX's origin (otherwise they get Content-Security-Policy: sandbox).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def effective_max_body_bytes(self) -> int:
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return settings.XENX_GATEWAY_MAX_BODY_BYTES


class ServiceInstance(models.Model):
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="instances"
    )
    url = models.CharField(
        max_length=500, validators=[validators.validate_instance_url]
    )
    weight = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "url"], name="gateway_instance_unique_url"
            ),
            models.CheckConstraint(
                condition=models.Q(weight__gte=1), name="gateway_instance_weight_min"
            ),
        ]

    def __str__(self):
        return self.url


class RegistryVersion(models.Model):
    """One row whose ``version`` moves in the transaction of every registry write.

    With Redis the registry's version lives in the shared cache. With the process-local
    cache of the default mode, a write made by another process (``register_service``,
    ``remove_service``) never reaches the server's cache, so the serving process reads
    this row instead, at most once a second (``gateway.registry``)."""

    version = models.BigIntegerField(default=0)

    def __str__(self):
        return f"registry version {self.version}"
