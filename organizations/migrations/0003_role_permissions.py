"""Grant the role Groups a starting set of permissions on invitations and documents.

Admins can adjust them in Django admin afterwards; the API asks for these permissions
(on top of the organization scoping) before adding, changing or deleting.
"""

from django.db import migrations

GRANTS = {
    "staff": {
        "invitation": ["view", "add", "change", "delete"],
        "document": ["view", "add", "change", "delete"],
    },
    "cpa": {
        "invitation": ["view", "add"],
        "document": ["view", "add", "change", "delete"],
    },
    "client": {
        "document": ["view", "add", "delete"],
    },
}


def _perms(apps, role):
    from django.contrib.auth.management import create_permissions

    Permission = apps.get_model("auth", "Permission")
    app_config = apps.get_app_config("organizations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    codenames = [
        f"{action}_{model}"
        for model, actions in GRANTS[role].items()
        for action in actions
    ]
    return Permission.objects.filter(
        content_type__app_label="organizations", codename__in=codenames
    )


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in GRANTS:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*_perms(apps, role))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in GRANTS:
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.remove(*_perms(apps, role))


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0002_invitation_document"),
        ("accounts", "0002_role_groups"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
