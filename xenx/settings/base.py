"""Settings shared by every environment. Everything tunable is read from the environment."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import (
    declare,
    env_bool,
    env_float,
    env_int,
    env_json_object,
    env_list,
    env_str,
    public_url,
    served_address,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
XENX_ENVIRONMENT = "development"  # overridden by production.py and test.py

DEV_SECRET_KEY = "django-insecure-xenx-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    # Django admin with the XenX admin site (two-step login, staff scoping): portal/admin_site.py
    "portal.apps.XenxAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: its collectstatic (one run at a time) replaces Django's.
    "xenx",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "auditlog",
    "organizations",
    "accounts",
    "gateway",
    "portal",
]

MIDDLEWARE = [
    "core.middleware.ForwardedProtoMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.AccessLogMiddleware",
    "core.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 before it is read.
    "core.middleware.BodyLimitMiddleware",
    # Static files (admin, portal, Swagger UI) from the application server itself.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "xenx.urls"
WSGI_APPLICATION = "xenx.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # A PostgreSQL that accepts connections but never answers (hung server, lost
    # network) must cost a request seconds, not a worker thread forever: libpq's
    # connect_timeout bounds the connection, TCP keepalives find a dead peer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        connect_timeout=env_int("DB_CONNECT_TIMEOUT", 3),
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=5,
        keepalives_count=3,
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared state: revocation, rate limits, gateway health) --------------------
REDIS_URL = env_str("REDIS_URL")
XENX_CACHE_PREFIX = env_str("XENX_CACHE_PREFIX", "xenx")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": XENX_CACHE_PREFIX,
            "OPTIONS": {
                # DefaultClient that fails fast for a second after a connection
                # failure instead of waiting out the timeout on every operation.
                "CLIENT_CLASS": "core.cache.FailFastClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                "CONNECTION_POOL_KWARGS": {"max_connections": 64},
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "xenx",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# --- Auth -----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/portal/login"
LOGIN_REDIRECT_URL = "/portal/"

# --- Browser security (portal and admin; production.py hardens cookies further) -------
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Content-Security-Policy sent on /portal/ and /admin/ pages (portal.middleware).
XENX_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Django admin's own templates carry a few style="" attributes.
XENX_ADMIN_CSP = XENX_CSP.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)
# Seconds a password-verified login may wait for its second factor (portal login).
XENX_PORTAL_MFA_SECONDS = 300

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
# WhiteNoise serves static files: in development straight from the apps and static/
# (DEBUG: finders, autorefresh); production.py serves collectstatic's compressed,
# content-hashed copies from STATIC_ROOT.
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"  # never served publicly: documents are downloaded through the API

# --- Email (Django's own settings, from the environment) ----------------------------
# Default: each mail in a file under EMAIL_FILE_PATH and one log line naming it (never
# a body in the log stream: core/mail_backends.py).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "core.mail_backends.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "sent-emails"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "XenX <no-reply@xenx.local>")
# Password reset mails are sent after the answer, on a thread (core.emails).
XENX_EMAIL_IN_BACKGROUND = env_bool("XENX_EMAIL_IN_BACKGROUND", True)
# Links in mails and the tokens' issuer: by default the address served (XENX_ADDR).
XENX_PUBLIC_URL = public_url()

# --- REST framework ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.jsonbody.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.errors.drf_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "XenX API",
    "DESCRIPTION": "Identity, user management and API gateway.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Two choice sets of roles: a user's (every role), an application's (no admin).
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "core.roles.Role",
        "ApplicationRoleEnum": "accounts.oidc.api.APPLICATION_ROLES",
    },
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.error_responses",  # every operation: the error body as default
    ],
}

# --- JWT (SimpleJWT) --------------------------------------------------------------
XENX_ACCESS_TOKEN_MINUTES = env_int("XENX_ACCESS_TOKEN_MINUTES", 15)
XENX_REFRESH_TOKEN_DAYS = env_int("XENX_REFRESH_TOKEN_DAYS", 7)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=XENX_ACCESS_TOKEN_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=XENX_REFRESH_TOKEN_DAYS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_str("XENX_JWT_SIGNING_KEY") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "LEEWAY": 0,
}
# Token signing (accounts/keys.py, accounts/signing.py): HS256 with SIGNING_KEY above,
# or EdDSA / RS256 with the key files of XENX_SIGNING_KEYS_DIR (rotate_signing_key),
# published at /.well-known/jwks.json.
XENX_JWT_ALGORITHM = env_str("XENX_JWT_ALGORITHM", "HS256").strip()
if XENX_JWT_ALGORITHM not in ("HS256", "EdDSA", "RS256"):
    raise ImproperlyConfigured(
        f"XENX_JWT_ALGORITHM must be HS256, EdDSA or RS256, got {XENX_JWT_ALGORITHM!r}"
    )
XENX_SIGNING_KEYS_DIR = env_str("XENX_SIGNING_KEYS_DIR") or None
# The "iss" of identity assertions and openid-configuration; default XENX_PUBLIC_URL.
XENX_JWT_ISSUER = (env_str("XENX_JWT_ISSUER") or XENX_PUBLIC_URL).rstrip("/")
# Absolute lifetime of a refresh-token family, counted from the password login.
XENX_SESSION_MAX_DAYS = env_int("XENX_SESSION_MAX_DAYS", 30)
XENX_MFA_TOKEN_SECONDS = 300
# How long a process reuses the token state it read from the cache (accounts.revocation):
# a revocation reaches every process within this time; 0 reads it for every call.
XENX_REVOCATION_MEMO_SECONDS = env_float("XENX_REVOCATION_MEMO_SECONDS", 0.5)

# --- OpenID provider (django-oauth-toolkit; accounts/oidc/, README "Sign in with XenX") --
# Applications are XenX's own model (organization, enabled, allowed services); access
# tokens are XenX JWTs (accounts/oidc/tokens.py) so the gateway checks them in process.
OAUTH2_PROVIDER_APPLICATION_MODEL = "accounts.Application"
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
    "ALLOW_LOCALHOST_LOOPBACK": True,  # RFC 8252: any port on a registered loopback URI
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    # RFC 9207: the authorization response names its issuer (mix-up attacks).
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(
        SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    ),
    "REFRESH_TOKEN_EXPIRE_SECONDS": int(
        SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds()
    ),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ID_TOKEN_EXPIRE_SECONDS": int(SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    "ACCESS_TOKEN_GENERATOR": "accounts.oidc.tokens.access_token",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "OAUTH2_VALIDATOR_CLASS": "accounts.oidc.validator.XenxValidator",
    "SCOPES": {
        "openid": "Sign you in",
        "profile": "Your name, role and organization",
        "email": "Your email address",
    },
    "DEFAULT_SCOPES": ["openid"],
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ],
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": True,
    "REQUEST_APPROVAL_PROMPT": "auto",  # a consent given once is remembered
}

# --- OTP ----------------------------------------------------------------------------
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "XenX")
OTP_TOTP_TOLERANCE = 1

# --- Rate limits (django-ratelimit on the shared cache) --------------------------------
RATELIMIT_USE_CACHE = "default"
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
XENX_RATE_LIMIT_DEFAULTS = {
    "anonymous": "60/m",
    "client": "120/m",
    "cpa": "600/m",
    "staff": "600/m",
    "admin": "3000/m",
    "login_ip": "20/m",
    "login_account": "10/15m",
    "app": "600/m",  # machine clients (client credentials), per application
}
XENX_RATE_LIMITS = {**XENX_RATE_LIMIT_DEFAULTS, **env_json_object("XENX_RATE_LIMITS")}

# --- XenX platform ----------------------------------------------------------------
XENX_SELF_REGISTRATION = env_bool("XENX_SELF_REGISTRATION", True)
# How long an invitation stays usable.
XENX_INVITATION_DAYS = 7
XENX_TRUSTED_PROXIES = env_list("XENX_TRUSTED_PROXIES", [])
XENX_MAX_UPLOAD_BYTES = env_int("XENX_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
XENX_GATEWAY_MAX_BODY_BYTES = env_int("XENX_GATEWAY_MAX_BODY_BYTES", 100 * 1024 * 1024)
XENX_METRICS_TOKEN = env_str("XENX_METRICS_TOKEN") or None
# Number of gunicorn workers this deployment runs; checked against a process-local cache.
XENX_WORKERS = env_int("WEB_CONCURRENCY", 1)
# Seconds a process skips Redis after a connection failure (core/cache.py).
XENX_CACHE_FAIL_FAST_SECONDS = env_float("XENX_CACHE_FAIL_FAST_SECONDS", 1.0)
# Redis down: refuse (fail closed) unless this is switched on.
XENX_FAIL_OPEN_WITHOUT_CACHE = env_bool("XENX_FAIL_OPEN_WITHOUT_CACHE", False)

# Uploaded files are read into memory up to this size; documents stream to disk above it.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)

# --- Logging: JSON lines with the request id -------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "text": {"()": "core.logging.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        },
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler (DEBUG only, the bare message) printed each of
        # its records a second time, unformatted: the root's handler alone.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"level": "ERROR", "handlers": [], "propagate": True},
        # runserver's own request lines repeat the access log (xenx.access): dropped.
        "django.server": {"handlers": ["null"], "propagate": False},
    },
}

# --- Gateway ------------------------------------------------------------------------
# Keep-alive connections kept per upstream instance and worker: the worker's threads.
XENX_GATEWAY_POOL_SIZE = env_int(
    "XENX_GATEWAY_POOL_SIZE", env_int("GUNICORN_THREADS", 16)
)
XENX_GATEWAY_CONNECT_TIMEOUT = env_float("XENX_GATEWAY_CONNECT_TIMEOUT", 3.0)
# PEM file of the CAs trusted for https:// instances (a service's own ca_bundle wins);
# unset: the system's CAs. Certificates are always verified.
XENX_GATEWAY_CA_BUNDLE = env_str("XENX_GATEWAY_CA_BUNDLE") or None
# Proxied calls skip sessions, CSRF, user lookup and URL resolution (gateway/middleware.py).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware"),
    "gateway.middleware.GatewayMiddleware",
)
# Access log lines of proxied calls go to the "xenx.access.gateway" logger: off below
# WARNING (5xx) unless XENX_GATEWAY_ACCESS_LOG is on; /metrics counts every call.
LOGGING["loggers"]["xenx.access.gateway"] = {
    "level": "INFO" if env_bool("XENX_GATEWAY_ACCESS_LOG", False) else "WARNING"
}
# Seconds a client may leave a read or write of its connection waiting (a request's head
# or body trickling in, an answer not read) before XenX's gunicorn worker drops it
# (xenx/worker.py); the gateway's upstream timeouts are the services' own.
XENX_CLIENT_TIMEOUT = env_float("XENX_CLIENT_TIMEOUT", 30.0)
# Seconds a client has to send a whole request, head and body, however steadily it
# trickles (XENX_CLIENT_TIMEOUT still bounds each read): Node.js's requestTimeout, 300 s.
XENX_CLIENT_REQUEST_TIMEOUT = env_float("XENX_CLIENT_REQUEST_TIMEOUT", 300.0)
# Port of scripts/demo_upstream.py on 127.0.0.1, where seed_demo points the demo service.
XENX_DEMO_PORT = env_int("XENX_DEMO_PORT", 9000)
# Seconds between active health checks made by each serving process (gateway/prober.py);
# with a shared cache one process per interval probes each instance. 0: off.
XENX_HEALTH_CHECK_INTERVAL = env_int("XENX_HEALTH_CHECK_INTERVAL", 10)
# Where gunicorn listens (gunicorn.conf.py reads it; checked here, xenx.E012).
XENX_ADDR = served_address()
# Set by gunicorn.conf.py for its workers once the start checks passed (xenx/startup.py).
declare("XENX_STARTUP_CHECKED_BY")
