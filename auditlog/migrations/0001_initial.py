"""The audit log moves from ``accounts`` to its own app below every app that writes it.
The table stays ``accounts_auditevent`` (state only: nothing is copied); the content
type follows, so the permissions granted on it (``view_auditevent``) stay granted."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="auditlog", model="auditevent").exists():
        ContentType.objects.filter(app_label="accounts", model="auditevent").update(
            app_label="auditlog"
        )


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="accounts", model="auditevent").exists():
        ContentType.objects.filter(app_label="auditlog", model="auditevent").update(
            app_label="accounts"
        )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0003_user_tokens_spared_session"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("organizations", "0003_role_permissions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ("action", models.CharField(choices=[("login.succeeded", "Login Succeeded"), ("login.failed", "Login Failed"), ("mfa.enabled", "Mfa Enabled"), ("mfa.disabled", "Mfa Disabled"), ("mfa.used", "Mfa Used"), ("mfa.failed", "Mfa Failed"), ("mfa.reset", "Mfa Reset"), ("mfa.backup_codes_regenerated", "Backup Codes Regenerated"), ("token.reuse_detected", "Token Reuse Detected"), ("logout", "Logout"), ("logout.all", "Logout All"), ("password.changed", "Password Changed"), ("password.reset_requested", "Password Reset Requested"), ("password.reset", "Password Reset"), ("email.verified", "Email Verified"), ("user.created", "User Created"), ("user.updated", "User Updated"), ("user.role_changed", "User Role Changed"), ("user.deactivated", "User Deactivated"), ("user.activated", "User Activated"), ("organization.created", "Organization Created"), ("organization.updated", "Organization Updated"), ("organization.deactivated", "Organization Deactivated"), ("invitation.created", "Invitation Created"), ("invitation.accepted", "Invitation Accepted"), ("document.uploaded", "Document Uploaded"), ("document.deleted", "Document Deleted"), ("service.created", "Service Created"), ("service.updated", "Service Updated"), ("service.deleted", "Service Deleted")], db_index=True, max_length=64)),
                        ("actor_email", models.CharField(blank=True, max_length=254)),
                        ("target_type", models.CharField(blank=True, max_length=64)),
                        ("target_id", models.CharField(blank=True, max_length=64)),
                        ("target_repr", models.CharField(blank=True, max_length=254)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("user_agent", models.CharField(blank=True, max_length=512)),
                        ("request_id", models.CharField(blank=True, max_length=128)),
                        ("data", models.JSONField(blank=True, default=dict)),
                        ("actor", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("organization", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="organizations.organization")),
                    ],
                    options={
                        "db_table": "accounts_auditevent",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [models.Index(fields=["organization", "-created_at"], name="accounts_au_organiz_2d237b_idx")],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
