from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self):
        from . import health, signals  # noqa: F401

        health.connect_lazy_start()
