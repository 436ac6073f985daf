from django.core.management.base import BaseCommand

from gateway import selectors


class Command(BaseCommand):
    help = "List gateway services: name, instances, healthy, public, roles."

    def handle(self, *args, **options):
        services = list(selectors.service_list())
        if not services:
            self.stdout.write("No services registered.")
            return
        instances = [i for s in services for i in s.instances.all()]
        health = selectors.instance_health(instances)
        rows = [("NAME", "INSTANCES", "HEALTHY", "PUBLIC", "ROLES")]
        for service in services:
            summary = selectors.service_health(service, health)
            name = service.name if service.enabled else f"{service.name} (disabled)"
            rows.append(
                (
                    name,
                    str(summary["total_instances"]),
                    str(summary["healthy_instances"]),
                    "yes" if service.public else "no",
                    ",".join(service.allowed_roles) or "any",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
            )
