from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self):
        from . import prober, signals  # noqa: F401

        prober.connect_lazy_start()
