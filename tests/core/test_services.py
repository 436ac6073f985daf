"""The one service contract: model validation as ValidationFailed, one field diff for
every update (``{"changed": {field: [before, after]}}``), every write checks its actor,
and a form shows a service's error beside its field."""

import pytest
from django import forms

from auditlog.models import AuditEvent
from core.errors import Forbidden, RateLimited, ValidationFailed, details_text
from core.forms import TOO_MANY_ATTEMPTS, add_api_error
from core.roles import Role
from core.services import field_diff, full_clean, model_update
from gateway import services as gateway_services
from gateway.models import Service
from organizations.models import Organization


def test_model_update_applies_validates_saves_and_returns_what_changed(org):
    before = org.name
    changed = model_update(
        instance=org, data={"name": "Renamed", "mfa_required": org.mfa_required}
    )
    assert changed == {"name": [before, "Renamed"]}
    assert Organization.objects.get(pk=org.pk).name == "Renamed"
    assert model_update(instance=org, data={"name": "Renamed"}) == {}


def test_model_update_refuses_with_validation_failed_and_field_details(org):
    with pytest.raises(ValidationFailed) as refused:
        model_update(instance=org, data={"slug": "not a slug!"})
    assert "slug" in refused.value.details


def test_field_diff_compares_a_relation_by_its_key(make_user, org, other_org):
    user = make_user(Role.CLIENT)
    assert field_diff(instance=user, data={"organization": org}) == {}
    assert field_diff(instance=user, data={"organization": other_org}) == {
        "organization": [org.pk, other_org.pk]
    }


def test_full_clean_speaks_the_error_family(db):
    with pytest.raises(ValidationFailed) as refused:
        full_clean(Service(name="Bad Name"))
    assert "name" in refused.value.details
    assert "name:" in details_text(refused.value)


@pytest.mark.parametrize("role", [Role.STAFF, Role.CPA, Role.CLIENT])
def test_service_writes_check_the_actor(make_user, role):
    actor = make_user(role)
    with pytest.raises(Forbidden):
        gateway_services.service_create(
            name="billing", instances=["http://127.0.0.1:9"], actor=actor
        )
    service = gateway_services.service_create(
        name="billing", instances=["http://127.0.0.1:9"]
    )
    with pytest.raises(Forbidden):
        gateway_services.service_update(service=service, actor=actor, public=True)
    with pytest.raises(Forbidden):
        gateway_services.service_delete(service=service, actor=actor)
    assert Service.objects.get(name="billing").public is False


def test_service_update_audits_the_one_shape(make_user):
    admin = make_user(Role.ADMIN)
    service = gateway_services.service_create(
        name="billing", instances=["http://127.0.0.1:9"], actor=admin
    )
    gateway_services.service_update(
        service=service,
        actor=admin,
        instances=["http://127.0.0.1:10"],
        retries=service.retries + 1,
    )
    event = AuditEvent.objects.get(action="service.updated")
    assert event.data == {
        "changed": {
            "retries": [service.retries - 1, service.retries],
            "instances": [["http://127.0.0.1:9"], ["http://127.0.0.1:10"]],
        }
    }


class _Form(forms.Form):
    email = forms.CharField(required=False)
    code = forms.CharField(required=False)


def _errors(exc, **kwargs):
    form = _Form(data={})
    form.is_valid()
    add_api_error(form, exc, **kwargs)
    return dict(form.errors)


def test_the_form_adapter_puts_each_detail_beside_its_field():
    exc = ValidationFailed(
        details={"email": ["Taken."], "non_field_errors": ["No."], "other": ["x"]}
    )
    assert _errors(exc) == {"email": ["Taken."], "__all__": ["No."]}
    assert _errors(
        ValidationFailed(details={"new": ["Short."]}), aliases={"new": "code"}
    ) == {"code": ["Short."]}
    assert _errors(ValidationFailed("Wrong code."), field="code") == {
        "code": ["Wrong code."]
    }
    assert _errors(RateLimited()) == {"__all__": [TOO_MANY_ATTEMPTS]}


def _admin_form(model_admin, request, service, **changes):
    """The Django admin's change form of ``service``, bound to its values and
    ``changes`` (roles as checkboxes, one rate field per role, the media types as the
    admin's JSON text)."""
    import json

    from django.forms.models import model_to_dict

    from gateway.admin import RATE_FIELDS

    form_class = model_admin.get_form(request, service, change=True)
    data = {**model_to_dict(service), **changes}
    data["allowed_content_types"] = json.dumps(data["allowed_content_types"])
    limits = data.pop("rate_limits") or {}
    data.update({f: limits.get(key, "") for f, key in RATE_FIELDS.items()})
    data = {k: v for k, v in data.items() if v is not None and v is not False}
    form = form_class(data, instance=service)
    assert form.is_valid(), form.errors
    return form


def test_the_admin_form_keeps_every_rate_limit_key(make_user, rf):
    """Saving a service's form changes the limits it was given and keeps the others:
    the machine clients' "app" rate (set through the API) was dropped when any rate
    field changed, as the form had no field for it."""
    from django.contrib import admin

    from gateway.validators import RATE_KEYS

    service = gateway_services.service_create(
        name="billing",
        instances=["http://127.0.0.1:9"],
        rate_limits={"app": "5/m", "client": "10/m"},
    )
    request = rf.post("/admin/gateway/service/")
    request.user = make_user(Role.ADMIN)
    model_admin = admin.site._registry[Service]
    # the form as shown, its client rate changed
    form = _admin_form(
        model_admin, request, service, rate_limits={"app": "5/m", "client": "20/m"}
    )
    assert set(form.fields) >= {f"rate_limit_{key}" for key in RATE_KEYS}
    model_admin.save_model(request, form.save(commit=False), form, True)
    service.refresh_from_db()
    assert service.rate_limits == {"app": "5/m", "client": "20/m"}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF])
def test_django_admin_writes_services_through_the_service(make_user, rf, role):
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied

    service = gateway_services.service_create(
        name="billing", instances=["http://127.0.0.1:9"]
    )
    request = rf.post("/admin/gateway/service/")
    request.user = make_user(role)
    model_admin = admin.site._registry[Service]
    retries = service.retries
    form = _admin_form(model_admin, request, service, retries=retries + 1)
    if role == Role.STAFF:
        with pytest.raises(PermissionDenied):
            model_admin.save_model(request, form.save(commit=False), form, True)
        assert Service.objects.get(pk=service.pk).retries == retries
        return
    model_admin.save_model(request, form.save(commit=False), form, True)
    event = AuditEvent.objects.get(action="service.updated")
    assert event.actor_id == request.user.pk
    assert event.data == {"changed": {"retries": [retries, retries + 1]}}
