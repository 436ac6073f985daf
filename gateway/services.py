"""Writes to the service registry: admins only (``actor=None``: the platform itself,
e.g. ``register_service``). Each records its audit event in the same transaction;
every save or delete bumps the registry version (see ``signals``)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from auditlog import audit
from core.errors import ValidationFailed
from core.services import full_clean, model_update
from organizations import permissions

from .models import Service, ServiceInstance

SERVICE_FIELDS = (
    "description",
    "enabled",
    "public",
    "allowed_roles",
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
)
DEMO_SERVICE = "demo"


def _instance_specs(instances) -> list[dict]:
    """Accept URLs or {url, weight, enabled} dicts; refuse duplicates."""
    specs = []
    seen = set()
    for item in instances:
        spec = {"url": item} if isinstance(item, str) else dict(item)
        url = spec.get("url", "")
        if url in seen:
            raise ValidationFailed(details={"instances": [f"{url} is listed twice."]})
        seen.add(url)
        specs.append(spec)
    return specs


def _set_instances(service: Service, instances) -> None:
    """The instance list becomes exactly ``instances`` (kept rows keep their id, so
    their health state in the cache stays theirs)."""
    specs = _instance_specs(instances)
    existing = {i.url: i for i in service.instances.all()}
    wanted = set()
    errors = {}
    for index, spec in enumerate(specs):
        inst = existing.get(spec["url"]) or ServiceInstance(service=service)
        inst.url = spec["url"]
        inst.weight = spec.get("weight", inst.weight or 1)
        inst.enabled = spec.get("enabled", True)
        try:
            full_clean(inst, exclude=["service"], validate_unique=False)
        except ValidationFailed as exc:
            errors.update(
                {
                    f"instances.{index}.{field}": msgs
                    for field, msgs in exc.details.items()
                }
            )
            continue
        inst.save()
        wanted.add(inst.url)
    if errors:
        raise ValidationFailed(details=errors)
    for url, inst in existing.items():
        if url not in wanted:
            inst.delete()


def _check_write(actor, fields: dict) -> None:
    permissions.check_service_write(actor)
    unknown = set(fields) - set(SERVICE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown service fields: {sorted(unknown)}")


@transaction.atomic
def service_create(
    *, name: str, instances=(), actor=None, request=None, **fields
) -> Service:
    """Create a service with its instances (``ValidationFailed`` on bad data)."""
    _check_write(actor, fields)
    service = Service(name=name, **fields)
    full_clean(service)
    service.save()
    _set_instances(service, instances)
    audit.record(
        audit.Action.SERVICE_CREATED,
        actor=actor,
        target=service,
        request=request,
        data={"instances": [i.url for i in service.instances.all()]},
    )
    return service


@transaction.atomic
def service_update(
    *, service: Service, instances=None, actor=None, request=None, **fields
) -> Service:
    """Change only the fields given; ``instances`` (when given) replaces the list."""
    _check_write(actor, fields)
    changed = model_update(instance=service, data=fields, also_save=["updated_at"])
    if instances is not None:
        before = sorted(i.url for i in service.instances.all())
        _set_instances(service, instances)
        after = sorted(i.url for i in service.instances.all())
        if after != before:
            if not changed:  # the service row itself did not change
                service.save(update_fields=["updated_at"])
            changed["instances"] = [before, after]
    audit.record(
        audit.Action.SERVICE_UPDATED,
        actor=actor,
        target=service,
        request=request,
        data={"changed": changed},
    )
    return service


@transaction.atomic
def service_delete(*, service: Service, actor=None, request=None) -> None:
    permissions.check_service_write(actor)
    audit.record(
        audit.Action.SERVICE_DELETED,
        actor=actor,
        target=service,
        request=request,
        data={"name": service.name},
    )
    service.delete()


def service_register(*, name: str, urls: list[str], actor=None, **options):
    """``register_service``: create, or update with the instance list becoming
    ``urls`` and only the options given changing. Returns (service, created)."""
    service = Service.objects.filter(name=name).first()
    if service is None:
        return service_create(name=name, instances=urls, actor=actor, **options), True
    return (
        service_update(service=service, instances=urls, actor=actor, **options),
        False,
    )


def service_seed_demo() -> str:
    """The demo service of ``seed_demo`` (idempotent)."""
    if Service.objects.filter(name=DEMO_SERVICE).exists():
        return f"Service {DEMO_SERVICE} exists."
    url = f"http://127.0.0.1:{settings.XENX_DEMO_PORT}"
    service_create(
        name=DEMO_SERVICE,
        instances=[url],
        description="scripts/demo_upstream.py, started by scripts/run.",
    )
    return f"Created service {DEMO_SERVICE} → {url} (calls: /api/{DEMO_SERVICE}/…)."
