"""Django admin actions with a selection that is not a primary key (issue 24:
``_selected_action=abc`` was a 500): the admin's own "Items must be selected" message,
on every registered ModelAdmin and each of its actions."""

import pytest
from django.contrib import admin as django_admin
from django.contrib.messages import get_messages
from django.urls import reverse

from core.roles import Role

pytestmark = pytest.mark.django_db

NOT_KEYS = ["abc", "", "1.5", "9" * 30, "\x00", "1 OR 1=1"]
ACTIONS = [
    (model, name)
    for model, model_admin in django_admin.site._registry.items()
    for _, name, _ in model_admin._get_base_actions()
]


@pytest.mark.parametrize(
    ("model", "action"), ACTIONS, ids=[f"{m._meta.label}.{a}" for m, a in ACTIONS]
)
def test_a_selection_that_is_not_a_key_is_never_a_500(signed_in, model, action):
    browser, _ = signed_in(Role.ADMIN, is_staff=True, is_superuser=True)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    for selected in NOT_KEYS:
        for extra in ({"index": "0"}, {}):  # the action bar, the confirmation post
            data = {"action": action, "_selected_action": [selected], **extra}
            resp = browser.post(url, data)
            assert resp.status_code in (200, 302), (selected, extra, resp.status_code)
            if resp.status_code == 302:  # the action was refused, with the reason
                shown = [str(m) for m in get_messages(resp.wsgi_request)]
                assert any("Items must be selected" in m for m in shown), shown
