from django.core.management.base import BaseCommand

from gateway import prober, selectors

PROCESS_LOCAL_NOTE = (
    "HEALTHY is unknown (?) here: the cache is local to each process (no REDIS_URL), "
    "so only the server knows its instances' health. GET /health shows it."
)


class Command(BaseCommand):
    help = "List gateway services: name, instances, healthy, public, roles."

    def handle(self, *args, **options):
        services = list(selectors.service_list())
        if not services:
            self.stdout.write("No services registered.")
            return
        shared = prober.cache_is_shared()
        instances = [i for s in services for i in s.instances.all()]
        health_by_id = selectors.instance_health(instances) if shared else {}
        rows = [("NAME", "INSTANCES", "HEALTHY", "PUBLIC", "ROLES")]
        for service in services:
            summary = selectors.service_health(service, health_by_id)
            name = service.name if service.enabled else f"{service.name} (disabled)"
            rows.append(
                (
                    name,
                    str(summary["total_instances"]),
                    str(summary["healthy_instances"]) if shared else "?",
                    "yes" if service.public else "no",
                    ",".join(service.allowed_roles) or "any",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
            )
        if not shared:
            self.stderr.write(PROCESS_LOCAL_NOTE)
