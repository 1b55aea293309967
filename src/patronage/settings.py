"""Django settings, read from the environment.

With no environment at all the application runs in its embedded mode: a SQLite file under
``var/``, a generated secret key kept in ``var/secret_key``, e-mail printed to the console and
debug off. Production sets ``DATABASE_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS`` and the e-mail
variables (see ``docs/operations.md``).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("PATRONAGE_VAR_DIR", Path.cwd() / "var")).resolve()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    # Embedded mode: keep one generated key on disk so sessions survive restarts and every
    # process of this installation signs with the same key.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG")
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Production hardening. PATRONAGE_HTTPS=true (the default whenever DEBUG is off and the
# deployment says it sits behind TLS) turns on secure cookies and HSTS.
HTTPS = env_bool("PATRONAGE_HTTPS")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("PATRONAGE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and env_bool("PATRONAGE_HSTS_PRELOAD")
# Asking browsers to preload HSTS binds the whole domain and its subdomains to HTTPS for months and
# is slow to undo, so it stays the library's explicit choice (PATRONAGE_HSTS_PRELOAD) and
# `check --deploy` does not warn about it being off.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
if env_bool("PATRONAGE_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Reverse proxies whose X-Forwarded-For is believed for the client address (audit log, lock-out):
# comma-separated addresses or networks, e.g. "127.0.0.1,10.0.0.0/8". Empty: the peer is the client.
PATRONAGE_TRUSTED_PROXIES = env_list("PATRONAGE_TRUSTED_PROXIES", "")
for _proxy in PATRONAGE_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"PATRONAGE_TRUSTED_PROXIES: {_proxy!r} is not an address or network, e.g. 10.0.0.5 or 10.0.0.0/8."
        ) from None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", 8 * 3600))
SESSION_SAVE_EVERY_REQUEST = True  # idle sessions expire: the age counts from the last request
# The same database store, its per-request read written by hand (patronage.core.sessions.SessionStore).
SESSION_ENGINE = "patronage.core.sessions"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_tasks",
    "django_tasks_db",
    "patronage.core",
    "patronage.libraries",
    "patronage.outbox",
    "patronage.patrons",
    "patronage.fines",
    "patronage.blocks",
    "patronage.resources",
    "patronage.reservations",
    "patronage.circulation",
    "patronage.standing",
    "patronage.credentials",
    "patronage.groups",
    "patronage.resourcesharing",
    "patronage.notices",
    "patronage.updates",
    "patronage.tickets",
    "patronage.feeds",
    "patronage.privacy",
    "patronage.staff",
    "patronage.api",
    "patronage.ops",
    "patronage.portal",
    "patronage.sip2",
    "patronage.ncip",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "patronage.core.sessions.SessionMiddleware",  # Django's, an unchanged session written once a minute
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "patronage.urls"
WSGI_APPLICATION = "patronage.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

_sqlite_path = VAR_DIR / "patronage.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{_sqlite_path}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", 60)),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE makes every atomic() take the write lock at BEGIN, so two writers queue instead
    # of one failing with "database is locked" half-way through; WAL lets readers go on meanwhile.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    if DATABASES["default"]["NAME"] and DATABASES["default"]["NAME"] != ":memory:":
        DATABASES["default"]["NAME"] = str(DATABASES["default"]["NAME"])
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
# Server-side binding and prepared statements on PostgreSQL for a process that repeats a few statements, e.g.
# a gunicorn pool serving only /ncip/ (docs/performance.md, NCIP). Off by default; the SIP2 process has its
# own PATRONAGE_SIP2_PREPARED_STATEMENTS, so that it can share the web processes' environment.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and os.environ.get(
    "PATRONAGE_DB_PREPARED_STATEMENTS", ""
) in {"1", "true", "on"}:
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=2)
# PATRONAGE_DB_HEALTH_CHECKS=0 leaves out Django's "SELECT 1" before the first statement of each request on a
# reused connection (one round trip per request). Meant only for the NCIP pool (patronage.ncip.wsgi), whose
# answers turn a dropped connection into "Temporary Processing Failure" (once per pooled connection). On by default.
if not env_bool("PATRONAGE_DB_HEALTH_CHECKS", True):
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False

# Audit events that record a read of personal data (core.audit.record_read) commit, on PostgreSQL and outside
# a transaction, without waiting for the write-ahead log's flush; true makes them wait like every change does.
PATRONAGE_AUDIT_READS_SYNCHRONOUS = env_bool("PATRONAGE_AUDIT_READS_SYNCHRONOUS")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _argon2_parameters() -> dict[str, int]:
    """The Argon2id cost of every password hash (core.passwords); OWASP's first recommended set by default."""
    names = {
        "memory_kib": ("PATRONAGE_PASSWORD_MEMORY_KIB", 19456, 8),
        "time_cost": ("PATRONAGE_PASSWORD_TIME_COST", 2, 1),
        "parallelism": ("PATRONAGE_PASSWORD_PARALLELISM", 1, 1),
    }
    values: dict[str, int] = {}
    for key, (name, default, least) in names.items():
        raw = os.environ.get(name, "").strip()
        try:
            values[key] = int(raw) if raw else default
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
        if values[key] < least:
            raise ImproperlyConfigured(f"{name} must be at least {least}, not {values[key]}.")
    if values["memory_kib"] < 8 * values["parallelism"]:
        raise ImproperlyConfigured(
            "PATRONAGE_PASSWORD_MEMORY_KIB must be at least 8 KiB per lane of PATRONAGE_PASSWORD_PARALLELISM."
        )
    return values


PATRONAGE_PASSWORD_ARGON2 = _argon2_parameters()
PASSWORD_HASHERS = [
    "patronage.core.passwords.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "staff:login"

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}
        if os.environ.get("REDIS_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not env_bool("PATRONAGE_TESTING")
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "patronage@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# A send that hangs would hold its outbox row; give up after this many seconds and retry later.
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", 30))
# The outbox (patronage.outbox): Message-ID domain (default: DEFAULT_FROM_EMAIL's), tries before a
# message is "failed", first retry delay (doubling each time up to the cap), messages per sender run.
PATRONAGE_MAIL_DOMAIN = os.environ.get("PATRONAGE_MAIL_DOMAIN", "")
PATRONAGE_OUTBOX_MAX_ATTEMPTS = int(os.environ.get("PATRONAGE_OUTBOX_MAX_ATTEMPTS", 8))
PATRONAGE_OUTBOX_RETRY_SECONDS = int(os.environ.get("PATRONAGE_OUTBOX_RETRY_SECONDS", 60))
PATRONAGE_OUTBOX_RETRY_CAP_SECONDS = int(os.environ.get("PATRONAGE_OUTBOX_RETRY_CAP_SECONDS", 6 * 3600))
PATRONAGE_OUTBOX_BATCH = int(os.environ.get("PATRONAGE_OUTBOX_BATCH", 200))

TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "patronage.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "patronage.api.errors.problem_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Patronage API",
    "DESCRIPTION": "Patron records, standing, fines and blocks for libraries.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The documentation page serves Swagger UI from this installation, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "FeeKindEnum": "patronage.fines.models.Fee.Kind",
        "AddressKindEnum": "patronage.patrons.models.Address.Kind",
        "ConditionEnum": "patronage.standing.rules.Condition",
        "GroupKindEnum": "patronage.groups.models.PatronGroup.Kind",
        "TicketStateEnum": "patronage.tickets.models.TICKET_STATES",
    },
}

# Failed credential checks: after this many failures in the window the account (or address)
# is locked for the cool-off period. Shared by every place that checks a password.
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", 5))
LOGIN_FAILURE_LIMIT_PER_ADDRESS = int(os.environ.get("LOGIN_FAILURE_LIMIT_PER_ADDRESS", 20))
# Patrons' failed PINs through one protocol client (a kiosk, an e-book vendor, a resource-sharing hub), which
# are counted per client instead of per address: every patron it serves shares its address.
LOGIN_FAILURE_LIMIT_PER_CLIENT = int(os.environ.get("LOGIN_FAILURE_LIMIT_PER_CLIENT", 100))
LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", 15 * 60))
# A portal session ends after this many minutes without a request (staff sessions use SESSION_COOKIE_AGE).
PATRONAGE_PORTAL_IDLE_MINUTES = int(os.environ.get("PATRONAGE_PORTAL_IDLE_MINUTES", 15))
# Calendar feeds (patronage.feeds): how long cancelled reservations stay in a feed as STATUS:CANCELLED, and
# the domain of the events' UIDs (default: the outbox's mail domain). Changing the domain changes every UID.
PATRONAGE_CALENDAR_CANCELLED_DAYS = int(os.environ.get("PATRONAGE_CALENDAR_CANCELLED_DAYS", 30))
PATRONAGE_CALENDAR_DOMAIN = os.environ.get("PATRONAGE_CALENDAR_DOMAIN", "")
# Phone validation (docs/subsystems/patrons.md) is a system-level option: on, every face (portal, update
# requests, staff pages, API, importer) checks numbers with phonenumbers for the library's country and
# stores E.164; off, a phone is kept as typed (one free field).
PATRONAGE_PHONE_VALIDATION = os.environ.get("PATRONAGE_PHONE_VALIDATION", "1").lower() not in {"0", "false", "off"}
# The query parameter naming the connection branch of a portal visitor who is not signed in.
PATRONAGE_CONNECTION_BRANCH_PARAM = os.environ.get("PATRONAGE_CONNECTION_BRANCH_PARAM", "branch")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# SIP2 server (patronage sip2; docs/subsystems/sip2.md)
PATRONAGE_SIP2_BIND = os.environ.get("PATRONAGE_SIP2_BIND", "127.0.0.1:6001")
PATRONAGE_SIP2_TLS_CERT = os.environ.get("PATRONAGE_SIP2_TLS_CERT", "")
PATRONAGE_SIP2_TLS_KEY = os.environ.get("PATRONAGE_SIP2_TLS_KEY", "")
PATRONAGE_SIP2_MAX_CONNECTIONS = int(os.environ.get("PATRONAGE_SIP2_MAX_CONNECTIONS", 64))
PATRONAGE_SIP2_IDLE_TIMEOUT = int(os.environ.get("PATRONAGE_SIP2_IDLE_TIMEOUT", 600))
PATRONAGE_SIP2_LOGIN_TIMEOUT = int(os.environ.get("PATRONAGE_SIP2_LOGIN_TIMEOUT", 60))
PATRONAGE_SIP2_MAX_MESSAGE = int(os.environ.get("PATRONAGE_SIP2_MAX_MESSAGE", 4096))
# One SIP2 process per core by default: each process's Python runs on one core at a time (the interpreter lock).
PATRONAGE_SIP2_PROCESSES = int(os.environ.get("PATRONAGE_SIP2_PROCESSES") or len(os.sched_getaffinity(0)))
PATRONAGE_SIP2_DEFAULT_LOAN_MINUTES = int(os.environ.get("PATRONAGE_SIP2_DEFAULT_LOAN_MINUTES", 24 * 60))
# Prepared statements for the SIP2 process's PostgreSQL connections; `0`, `false`, `off` or `no` turns them off,
# for a transaction-mode pooler that cannot keep them (PgBouncer before 1.21).
PATRONAGE_SIP2_PREPARED_STATEMENTS = os.environ.get("PATRONAGE_SIP2_PREPARED_STATEMENTS", "").strip().lower() not in {
    "0",
    "false",
    "off",
    "no",
}  # as core.database.OFF (settings import nothing of the application)
