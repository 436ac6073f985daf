from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from . import checks, schema, sessions, signals  # noqa: F401
        from .oidc import selectors  # noqa: F401 - who sees which application
