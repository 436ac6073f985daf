"""Django admin's service form: roles as checkboxes, one rate field per role, each
error next to its field."""

import re

import pytest
from django.test import Client

from core.roles import Role
from gateway.models import Service


@pytest.fixture
def browser(make_user):
    client = Client()
    client.force_login(make_user(Role.ADMIN), backend="accounts.backends.EmailBackend")
    return client


def _form(**changes):
    data = {
        "name": "billing",
        "description": "",
        "enabled": "on",
        "health_check_path": "/health",
        "timeout_seconds": "30",
        "retries": "1",
        "max_body_bytes": "",
        "allowed_content_types": "[]",
        "ca_bundle": "",
        "instances-TOTAL_FORMS": "1",
        "instances-INITIAL_FORMS": "0",
        "instances-MIN_NUM_FORMS": "0",
        "instances-MAX_NUM_FORMS": "1000",
        "instances-0-url": "http://127.0.0.1:9",
        "instances-0-weight": "1",
        "instances-0-enabled": "on",
    }
    data.update(changes)
    return data


def test_the_form_shows_role_checkboxes_and_a_rate_field_per_role(browser):
    page = browser.get("/admin/gateway/service/add/").content.decode()
    for role in Role.values:
        assert re.search(rf'type="checkbox" name="allowed_roles" value="{role}"', page)
    for key in [*Role.values, "anonymous"]:
        assert f'name="rate_limit_{key}"' in page
    assert 'name="rate_limits"' not in page  # no raw JSON


def test_a_service_saved_with_roles_and_limits(browser):
    data = _form(allowed_roles=["cpa", "staff"], rate_limit_cpa="100/m")
    data["rate_limit_anonymous"] = "10/15m"
    response = browser.post("/admin/gateway/service/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    service = Service.objects.get(name="billing")
    assert sorted(service.allowed_roles) == ["cpa", "staff"]
    assert service.rate_limits == {"cpa": "100/m", "anonymous": "10/15m"}
    page = browser.get(f"/admin/gateway/service/{service.pk}/change/").content.decode()
    assert re.search(r'name="rate_limit_cpa" value="100/m"', page)
    assert re.search(r'value="cpa"[^>]*checked', page)


def test_a_bad_rate_is_an_error_next_to_its_field(browser):
    response = browser.post(
        "/admin/gateway/service/add/",
        _form(rate_limit_client="100/min", allowed_roles=["nobody"]),
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert set(form.errors) == {"rate_limit_client", "allowed_roles"}
    assert "is not a rate like" in form.errors["rate_limit_client"][0]
    assert re.search(
        r'<div class="form-row errors field-rate_limit_client">\s*'
        r'<ul class="errorlist" id="id_rate_limit_client_error"><li>[^<]*100/min',
        response.content.decode(),
    )
    assert not Service.objects.filter(name="billing").exists()
