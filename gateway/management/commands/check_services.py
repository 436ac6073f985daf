import sys
import time

from django.core.management.base import BaseCommand, CommandError

from core.cache import CACHE_ERRORS
from gateway import prober
from gateway.probes import check_all

PROCESS_LOCAL_NOTE = (
    "Note: the cache is local to this process (no REDIS_URL), so these verdicts stay "
    "in this command and the running server never sees them. The server checks its "
    "instances itself every XENX_HEALTH_CHECK_INTERVAL seconds; GET /health shows its "
    "view."
)


class Command(BaseCommand):
    help = (
        "One-off active health checks: GET each enabled instance's health_check_path "
        "and share the verdicts with every gateway worker through the cache (serving "
        "processes also check on their own, every XENX_HEALTH_CHECK_INTERVAL seconds). "
        "With --once, exits 1 when an instance is unhealthy."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Check once and exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=10.0,
            help="Seconds between rounds (default 10).",
        )

    def handle(self, *args, once, interval, **options):
        if interval <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        if not prober.cache_is_shared():
            self.stderr.write(PROCESS_LOCAL_NOTE)
        while True:
            try:
                results = check_all(down_seconds=prober.down_seconds(interval))
            except CACHE_ERRORS as exc:
                raise CommandError(f"The cache is unavailable: {exc}") from None
            if not results:
                self.stdout.write("No enabled instances to check.")
            for service, url, ok, detail in results:
                verdict = "healthy" if ok else "UNHEALTHY"
                self.stdout.write(f"{service}  {url}  {verdict}  ({detail})")
            if once:
                unhealthy = sum(1 for *_, ok, _detail in results if not ok)
                if unhealthy:
                    raise CommandError(
                        f"{unhealthy} of {len(results)} instances unhealthy."
                    )
                return
            self.stdout.flush()
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                sys.exit(0)
