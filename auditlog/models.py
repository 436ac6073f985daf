from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """An append-only record of a security-relevant action."""

    class Action(models.TextChoices):
        LOGIN_SUCCEEDED = "login.succeeded"
        LOGIN_FAILED = "login.failed"
        MFA_ENABLED = "mfa.enabled"
        MFA_DISABLED = "mfa.disabled"
        MFA_USED = "mfa.used"
        MFA_FAILED = "mfa.failed"
        MFA_RESET = "mfa.reset"
        BACKUP_CODES_REGENERATED = "mfa.backup_codes_regenerated"
        TOKEN_REUSE_DETECTED = "token.reuse_detected"
        LOGOUT = "logout"
        LOGOUT_ALL = "logout.all"
        SESSION_ENDED = "session.ended"
        PASSWORD_CHANGED = "password.changed"
        PASSWORD_RESET_REQUESTED = "password.reset_requested"
        PASSWORD_RESET = "password.reset"
        EMAIL_VERIFIED = "email.verified"
        EMAIL_CHANGE_REQUESTED = "email.change_requested"
        EMAIL_CHANGED = "email.changed"
        REGISTRATION_EXISTING = "registration.existing_account"
        USER_CREATED = "user.created"
        USER_UPDATED = "user.updated"
        USER_ROLE_CHANGED = "user.role_changed"
        USER_DEACTIVATED = "user.deactivated"
        USER_ACTIVATED = "user.activated"
        USER_UNLOCKED = "user.unlocked"
        ORGANIZATION_CREATED = "organization.created"
        ORGANIZATION_UPDATED = "organization.updated"
        ORGANIZATION_DEACTIVATED = "organization.deactivated"
        INVITATION_CREATED = "invitation.created"
        INVITATION_ACCEPTED = "invitation.accepted"
        INVITATION_RESENT = "invitation.resent"
        INVITATION_REVOKED = "invitation.revoked"
        DOCUMENT_UPLOADED = "document.uploaded"
        DOCUMENT_DELETED = "document.deleted"
        SERVICE_CREATED = "service.created"
        SERVICE_UPDATED = "service.updated"
        SERVICE_DELETED = "service.deleted"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64, choices=Action.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_email = models.CharField(max_length=254, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=254, blank=True)
    organization = models.ForeignKey(
        "organizations.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        # The table and index keep the names they had when this model lived in accounts.
        db_table = "accounts_auditevent"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["organization", "-created_at"],
                name="accounts_au_organiz_2d237b_idx",
            )
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_repr}"
