from django.core.management.base import BaseCommand, CommandError

from gateway.models import Service
from gateway.services import service_delete


class Command(BaseCommand):
    help = "Remove a gateway service and its instances."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The service's name.")

    def handle(self, *args, name, **options):
        service = Service.objects.filter(name=name).first()
        if service is None:
            raise CommandError(f"No service named {name!r}.")
        service_delete(service=service)
        self.stdout.write(self.style.SUCCESS(f"Removed service {name}."))
