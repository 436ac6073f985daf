"""Keep the cached revocation state coherent with the database."""

from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from organizations.models import Organization

from . import policy, revocation
from .models import User


@receiver([post_save, post_delete], sender=User)
def _user_changed(sender, instance, **kwargs):
    revocation.invalidate_user(instance.pk)


@receiver([post_save, post_delete], sender=Organization)
def _org_changed(sender, instance, **kwargs):
    revocation.invalidate_org(instance.pk)


@receiver(user_logged_in)
def _stamp_session(sender, request, user, **kwargs):
    """Every browser login (portal, admin, tests' force_login) records when its session
    started: the policy refuses sessions older than the user's last revocation."""
    if request is not None and hasattr(request, "session"):
        policy.mark_session_started(request)
