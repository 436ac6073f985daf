from django.db import models


class Organization(models.Model):
    """A tenant: a CPA firm with its staff, CPAs and clients."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    mfa_required = models.BooleanField(
        default=False, help_text="Members must enrol TOTP before using the API."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name
