"""Settings of the benchmark's minimal project (targets b and c). Not XenX's settings."""

import os

BENCH_UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:18500/")
# The exact bytes the upstream nginx answers; the bare view answers the same.
BENCH_BODY = os.environ.get("BENCH_BODY", '{"ok":true}').encode()

SECRET_KEY = os.environ.get("SECRET_KEY") or os.urandom(32).hex()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["revproxy"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"
DATABASES: dict = {}
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING"},
}
