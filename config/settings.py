"""Settings. Everything configurable comes from the environment, read in config/env.py.

The embedded default needs no configuration at all: SQLite under var/, Celery tasks run
eagerly in-process (no Redis). Production and the test suite set DATABASE_URL (PostgreSQL
through psycopg 3) and CELERY_BROKER_URL (Redis).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str, redis_db_shifted

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
DEV_SECRET_KEY = "dev-insecure-key-only-for-DEBUG-and-tests"
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
TESTING = env_bool("TESTING", False)
if SECRET_KEY == DEV_SECRET_KEY and not (DEBUG or TESTING):
    raise ImproperlyConfigured(
        "SECRET_KEY is unset while DEBUG is off. Set SECRET_KEY to a long random string "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or DEBUG=1 for development."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    # Swagger UI and Redoc served from our static files, not a CDN (pinned with the package).
    "drf_spectacular_sidecar",
    # After auth and authtoken: replaces their admin pages with superuser-only ones.
    "accounts",
    "catalog",
    "prototypes",
    "annotator",
    "review",
    "curation",
    "exports",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "infra.security.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "config.urls"
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
                "catalog.context_processors.roles",
            ],
        },
    },
]
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    # Health checks: a persistent connection that the server ended while idle (a restart,
    # pg_terminate_backend) is replaced at the start of the next request instead of failing it.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600), conn_health_checks=True
        )
    }
except Exception as exc:  # dj_database_url raises several types; say which variable is wrong
    raise ImproperlyConfigured(f"DATABASE_URL={DATABASE_URL!r} cannot be parsed: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if IS_POSTGRES:
    # The hot paths' statements (infra.sql) are prepared once per connection; psycopg refuses
    # to prepare anything while prepare_threshold is None (Django's default). The ORM's own
    # queries use client-side binding cursors, which psycopg never prepares, so this changes
    # nothing for them. Prepared statements use a generic plan (planned once, not on every
    # execution): infra.sql's statements are written for it and their plans are tested.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c plan_cache_mode=force_generic_plan")

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# The model backend behind the sign-in throttle (accounts/throttle.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
# Behind a reverse proxy every REMOTE_ADDR is the proxy's: name the header it sets with the
# client's address (e.g. HTTP_X_FORWARDED_FOR). Only when the proxy overwrites it.
LOGIN_CLIENT_IP_HEADER = env_str("LOGIN_CLIENT_IP_HEADER", "")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Without collectstatic (development, tests) WhiteNoise serves from the finders instead.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
if WHITENOISE_USE_FINDERS:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Security headers (CSRF stays on everywhere) --------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# With DEBUG off the session and CSRF cookies are Secure by default, and nothing we ship turns
# that off (docker-compose used to default SECURE_COOKIES to 0): browsers send Secure cookies to
# http://localhost and http://127.0.0.1 too. SECURE_COOKIES=0 stays possible for a plain-http
# deployment on another host, as an explicit choice. TESTING keeps them off for the HTTP
# clients of the benchmarks and tests.
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG and not TESTING)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HTTPS: the redirect, HSTS and the proxy's header. Off by default (the embedded default and
# `make demo` serve plain http on localhost); a deployment behind TLS turns them on.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the load balancer's probe speaks plain http
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# "HTTP_X_FORWARDED_PROTO" behind a proxy that sets X-Forwarded-Proto (and strips the client's).
_proxy_header = env_str("SECURE_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (_proxy_header, "https") if _proxy_header else None
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
# infra.security.SecurityHeadersMiddleware sends it (Django 5.2 has no built-in CSP). Scripts
# and styles only from our static files; style attributes stay allowed (Swagger UI sets them).
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

# --- Celery ---------------------------------------------------------------------------
# Unset broker = embedded default: tasks run eagerly in-process, no Redis needed.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or None
if TESTING and CELERY_BROKER_URL and env_str("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite in pytest-xdist workers: pytest-django gives each its own test
    # database, and here each gets its own Redis database (queues, coalesced lists), so that one
    # worker's Celery workers never take another's tasks. Written back to the environment for
    # the processes tests start (Celery workers, gunicorn), which must not shift it again.
    CELERY_BROKER_URL = redis_db_shifted(CELERY_BROKER_URL, int(env_str("PYTEST_XDIST_WORKER").removeprefix("gw")))
    os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
    del os.environ["PYTEST_XDIST_WORKER"]
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
# Without a broker, long tasks (a curation run) run in a thread of the web process after the
# request's commit instead of inside the request (infra.enqueue). The test suite keeps them
# inline by default so that a test sees the finished run; tests of the thread turn it on.
EAGER_LONG_TASKS_IN_THREAD = env_bool("EAGER_LONG_TASKS_IN_THREAD", not TESTING)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or CELERY_BROKER_URL
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_ROUTES = {
    "prototypes.*": {"queue": "gpu"},
    "curation.*": {"queue": "curation"},
    "exports.*": {"queue": "exports"},
    "evaluation.score_and_evaluate": {"queue": "gpu"},  # scores images with torch first
    "evaluation.*": {"queue": "default"},
}

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's TokenAuthentication, reading the user's groups (roles) in the same query.
        # First, so that a request without credentials gets 401 with `WWW-Authenticate: Token`.
        "infra.roles.RoleTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # limit/offset checked and bounded (a bad value is a 400, not ignored or a 500).
    "DEFAULT_PAGINATION_CLASS": "infra.api.BoundedLimitOffsetPagination",
    # JSON nested deeper than infra.api.MAX_JSON_DEPTH is a 400 (it used to be a RecursionError).
    # The API speaks JSON only (the pages are Django forms): the schema then documents one
    # request body type, the one every client of ours sends.
    "DEFAULT_PARSER_CLASSES": ["infra.api.DepthLimitedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "infra.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ImageNet-X style annotation platform API",
    "DESCRIPTION": "Collect, review, curate and export factor-of-variation annotations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # `<id:...>` path parameters (infra.api.IdConverter) are bounded integers.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 10**15 - 1}},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "infra.api.add_error_responses",
    ],
}

# --- Platform knobs -------------------------------------------------------------------
LEASE_MINUTES = env_int("LEASE_MINUTES", 15)
SPACY_MODEL = env_str("SPACY_MODEL", "en_core_web_md")
PROTOTYPES_PER_CLASS = env_int("PROTOTYPES_PER_CLASS", 3)
GOLD_RATE = env_float("GOLD_RATE", 0.05)
# Pause (seconds) before each curation chunk: 0 in production; tests set it on a worker so a
# run is still in flight when they kill that worker.
CURATION_CHUNK_THROTTLE_S = env_float("CURATION_CHUNK_THROTTLE_S", 0.0)
# The review app's consistency check after each submit (a Celery task queued on commit); the
# annotation load benchmark turns it off to measure the queue alone.
REVIEW_CHECKS_ON_SUBMIT = env_bool("REVIEW_CHECKS_ON_SUBMIT", True)
# The quality dashboard shows a stored report and asks a worker for a new one when the data
# changed; at most once per this many seconds per filter (a report takes seconds at ImageNet size).
QUALITY_REPORT_REFRESH_SECONDS = env_int("QUALITY_REPORT_REFRESH_SECONDS", 30)
# Releases: where built releases live, rows streamed per chunk while building, and after how
# many seconds without a heartbeat a `building` release counts as abandoned (may be rebuilt).
EXPORTS_ROOT = env_str("EXPORTS_ROOT") or None  # None: MEDIA_ROOT/releases, read when used
EXPORTS_CHUNK_SIZE = env_int("EXPORTS_CHUNK_SIZE", 5000)
EXPORTS_BUILD_STALE_SECONDS = env_int("EXPORTS_BUILD_STALE_SECONDS", 300)
# Evaluation: the share of annotated images a predictions file must cover (else refused unless
# the user asks), and the largest upload accepted (MiB).
EVALUATION_MIN_COVERAGE = env_float("EVALUATION_MIN_COVERAGE", 0.9)
EVALUATION_MAX_UPLOAD_MB = env_int("EVALUATION_MAX_UPLOAD_MB", 32)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # One line per task success is noise in the embedded default, where tasks run eagerly.
    "loggers": {"celery.app.trace": {"level": "WARNING"}},
}
