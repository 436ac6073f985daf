"""A document's file goes with its row, however the row is deleted (API, admin, a
cascade from its owner)."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Document
from .services import delete_file_on_commit


@receiver(post_delete, sender=Document)
def _document_deleted(sender, instance, **kwargs):
    delete_file_on_commit(instance)
