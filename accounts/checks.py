"""``manage.py check``: an asymmetric XENX_JWT_ALGORITHM needs a usable key file."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from .keys import ID_TOKEN_ALG, is_asymmetric, keyring, keys_dir, unsafe

COMMAND = "python manage.py rotate_signing_key"


@register(Tags.security)
def check_signing_keys(app_configs, **kwargs):
    alg = settings.XENX_JWT_ALGORITHM
    if not is_asymmetric(alg):
        return []
    if keys_dir() is None:
        return [
            Error(
                f"XENX_JWT_ALGORITHM is {alg} but XENX_SIGNING_KEYS_DIR is not set.",
                hint=f"Set XENX_SIGNING_KEYS_DIR to a directory shared by every node, "
                f"then run '{COMMAND}'.",
                id="xenx.E010",
            )
        ]
    directory_problem = unsafe(keys_dir()) if keys_dir().exists() else None
    if directory_problem is not None:
        return [
            Error(
                f"XENX_SIGNING_KEYS_DIR cannot be trusted: {directory_problem}.",
                hint="Only XenX's user may write to it: chmod go-w, chown to that user.",
                id="xenx.E013",
            )
        ]
    problems = [
        Warning(
            f"XENX_SIGNING_KEYS_DIR holds an unusable key file ({error}).",
            hint="Remove it, or restore it from the node that wrote it.",
            id="xenx.W010",
        )
        for error in keyring.errors()
    ]
    if keyring.states(alg, force=True).signing is None:
        problems.append(
            Error(
                f"XENX_JWT_ALGORITHM is {alg} but XENX_SIGNING_KEYS_DIR "
                f"({keys_dir()}) holds no usable {alg} key.",
                hint=f"Run '{COMMAND}' to create one.",
                id="xenx.E011",
            )
        )
    return problems


@register(Tags.security, Tags.database)
def check_id_token_key(app_configs, databases=None, **kwargs):
    """ID tokens need an RS256 key: a warning, not an error (the rest of XenX keeps
    serving), while applications exist without one. It reads the database, so it is
    a database check (``manage.py check --database default``, ``migrate``)."""
    if not databases or keyring.states(ID_TOKEN_ALG, force=True).signing is not None:
        return []
    from .models import Application  # noqa: PLC0415 - checks load before the models

    try:
        registered = Application.objects.exists()
    except DatabaseError:  # not migrated yet, or no database: nothing to warn about
        return []
    if not registered:
        return []
    return [
        Warning(
            "OpenID Connect applications are registered but no RS256 key signs ID "
            "tokens: their sign-ins fail.",
            hint=f"Run '{COMMAND} --algorithm RS256' (XENX_SIGNING_KEYS_DIR must be set).",
            id="xenx.W011",
        )
    ]
