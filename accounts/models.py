from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import Group, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from core.roles import ORG_REQUIRED_ROLES, Role


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)  # None → unusable password
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("role", Role.CLIENT)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra["role"] = Role.ADMIN
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Email is the login (case-insensitive); the role decides what it may do.

    ``is_staff`` and ``is_superuser`` are derived from ``role`` on every save, and the
    user is kept in exactly one role Group, so Django admin and permissions follow the
    role.
    """

    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CLIENT)
    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, editable=False)
    email_verified = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # Every token issued at or before this instant is refused (logout-all, password
    # change, deactivation, role change...). Null: nothing revoked wholesale.
    tokens_revoked_before = models.DateTimeField(null=True, blank=True, editable=False)
    # The one session (token family or browser session, by its start time ``sst``)
    # that the last wholesale revocation spared: the one that made the change.
    tokens_spared_session = models.FloatField(null=True, blank=True, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    # Names are optional (blank): createsuperuser asks only the email and password, and
    # --noinput needs only DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD.
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=~models.Q(
                    role__in=sorted(r.value for r in ORG_REQUIRED_ROLES)
                )
                | models.Q(organization__isnull=False),
                name="user_org_required_for_staff_and_cpa",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="user_role_valid"
            ),
        ]

    def __str__(self):
        return self.email

    def get_full_name(self):
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self):
        return self.first_name or self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()
        if self.role in ORG_REQUIRED_ROLES and self.organization_id is None:
            raise ValidationError(
                {"organization": f"A user with role {self.role} needs an organization."}
            )
        qs = User.objects.filter(email__iexact=self.email)
        if self.pk:
            qs = qs.exclude(pk=self.pk)
        if self.email and qs.exists():
            raise ValidationError({"email": "A user with this email already exists."})

    def save(self, *args, **kwargs):
        self.email = (self.email or "").strip().lower()
        self.is_superuser = self.role == Role.ADMIN
        self.is_staff = self.role in (Role.ADMIN, Role.STAFF)
        with transaction.atomic():
            super().save(*args, **kwargs)
            self.sync_role_group()

    def sync_role_group(self):
        """Keep the user in exactly one role Group: the one named after its role."""
        groups = Group.objects.filter(name__in=Role.values)
        wanted = [g for g in groups if g.name == self.role]
        current = set(
            self.groups.filter(name__in=Role.values).values_list("id", flat=True)
        )
        if current != {g.id for g in wanted}:
            self.groups.remove(*[g for g in groups if g.id in current])
            self.groups.add(*wanted)


class UserSession(models.Model):
    """A signed-in session the user can see and end (accounts/sessions.py): one API
    refresh-token family (its id is the ``fam`` claim of every token of the family)
    or one portal / admin session (Django's session key)."""

    class Kind(models.TextChoices):
        API = "api", "API (tokens)"
        PORTAL = "portal", "Portal"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    family = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    session_key = models.CharField(
        max_length=40, null=True, blank=True, unique=True, editable=False
    )
    refresh_jti = models.CharField(max_length=255, blank=True, editable=False)
    # API: the family's ``sst`` (password login), what a revocation may spare.
    session_started = models.FloatField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    login_ip = models.GenericIPAddressField(null=True, blank=True)
    login_user_agent = models.CharField(max_length=512, blank=True)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    last_user_agent = models.CharField(max_length=512, blank=True)
    mfa = models.BooleanField(default=False)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_used_at", "-id"]
        indexes = [models.Index(fields=["user", "ended_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} session {self.pk} of {self.user_id}"


class RevokedToken(models.Model):
    """What logout and ending a session stop, kept in the database until every token
    it stops has expired: one access token (``jti``) or a session's refresh family
    (``fam``). The shared cache's ``jti:`` / ``fam:`` records are the copy the hot path
    reads; when the cache comes back empty they are rebuilt from here
    (``accounts.revocation``), so a logout survives a Redis restart."""

    class Kind(models.TextChoices):
        ACCESS = "jti", "Access token"
        FAMILY = "fam", "Session (refresh family)"

    kind = models.CharField(max_length=3, choices=Kind.choices)
    value = models.CharField(max_length=64)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "value"], name="accounts_revokedtoken_unique"
            )
        ]

    def __str__(self):
        return f"{self.kind}:{self.value}"
