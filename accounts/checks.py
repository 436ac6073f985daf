"""``manage.py check``: an asymmetric XENX_JWT_ALGORITHM needs a usable key file."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .keys import is_asymmetric, keyring, keys_dir, unsafe

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
