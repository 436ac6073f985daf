import time

from django.core.management.base import BaseCommand, CommandError

from gateway import state
from gateway.checks import check_all


class Command(BaseCommand):
    help = (
        "Active health checks: GET each enabled instance's health_check_path and share "
        "the result with every gateway worker (through the cache). Loops by default."
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
        # A failed check keeps the instance out for longer than one interval, so it
        # stays out until a later check (or the breaker's trial) finds it well.
        down_seconds = max(state.OPEN_SECONDS, 2 * interval)
        while True:
            try:
                results = check_all(down_seconds=down_seconds)
            except state.CACHE_ERRORS as exc:
                raise CommandError(f"The cache is unavailable: {exc}") from None
            if not results:
                self.stdout.write("No enabled instances to check.")
            for service, url, ok, detail in results:
                verdict = "healthy" if ok else "UNHEALTHY"
                self.stdout.write(f"{service}  {url}  {verdict}  ({detail})")
            if once:
                return
            self.stdout.flush()
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return
