"""One Group per role, with a sensible starting set of permissions. Admins can adjust
what a role may do in Django admin afterwards; this migration only fills empty groups."""

from django.db import migrations

ROLES = ["admin", "staff", "cpa", "client"]

# Permissions by codename prefix over app labels; models added later get theirs from
# the migrations that add them.
DEFAULTS = {
    "staff": [
        ("accounts", "user", ["view", "add", "change"]),
        ("accounts", "auditevent", ["view"]),
        ("organizations", "organization", ["view"]),
    ],
    "cpa": [
        ("accounts", "user", ["view", "add", "change"]),
        ("organizations", "organization", ["view"]),
    ],
    "client": [
        ("organizations", "organization", ["view"]),
    ],
}


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        group, created = Group.objects.get_or_create(name=role)
        if not created:
            continue
        for app_label, model, actions in DEFAULTS.get(role, []):
            codenames = [f"{action}_{model}" for action in actions]
            perms = Permission.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            )
            group.permissions.add(*perms)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("organizations", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
