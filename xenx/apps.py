from django.apps import AppConfig


class XenxConfig(AppConfig):
    name = "xenx"
    verbose_name = "XenX platform"

    def ready(self):
        from . import checks  # noqa: F401  (registers system checks)
