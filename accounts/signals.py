"""Keep the cached revocation state coherent with the database."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from organizations.models import Organization

from . import revocation
from .models import User


@receiver([post_save, post_delete], sender=User)
def _user_changed(sender, instance, **kwargs):
    revocation.invalidate_user(instance.pk)


@receiver([post_save, post_delete], sender=Organization)
def _org_changed(sender, instance, **kwargs):
    revocation.invalidate_org(instance.pk)
