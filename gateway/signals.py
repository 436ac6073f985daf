"""Any save or delete in the registry bumps its version once the transaction commits,
so every worker and node reloads its snapshot (and this process does at once); the
database's version row moves in the same transaction, for servers whose cache is
process-local (``gateway.registry``)."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import state
from .models import Service, ServiceInstance
from .registry import bump_database_version, registry


@receiver([post_save, post_delete], sender=Service)
@receiver([post_save, post_delete], sender=ServiceInstance)
def registry_changed(sender, **kwargs):
    registry.invalidate()
    bump_database_version()
    transaction.on_commit(state.bump_version, robust=True)
