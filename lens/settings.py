"""Lens settings, read from the environment (SPEC §6).

The embedded default (nothing set) is a development setup: SQLite in the checkout,
Celery tasks run in-process, DEBUG on. Production sets DATABASE_URL,
CELERY_BROKER_URL, SECRET_KEY, DEBUG=off and ALLOWED_HOSTS.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)

_DEV_SECRET_KEY = "lens-development-key-not-for-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost of ours: every answer carries the policy, error answers of middleware too.
    "audit.web.middleware.ContentSecurityPolicyMiddleware",
    "audit.web.middleware.QueryParameterLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "lens.urls"

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
                "audit.web.context.caller",
            ],
        },
    },
]

WSGI_APPLICATION = "lens.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'lens.sqlite3'}")}
# Several test runs may share one PostgreSQL server; each can name its own test database.
if env.str("LENS_TEST_DB_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env.str("LENS_TEST_DB_NAME")}
_POOL_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)  # connections a web process pools (0: none)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the browser read while the in-process ingest writes.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
elif _POOL_SIZE > 0:
    # A pool per process (psycopg_pool, through Django): under ASGI every request and every
    # live-tail read runs in a thread of its own, so kept connections would be one per thread
    # and opened ones a new PostgreSQL backend per request. The pool bounds a process's
    # connections (a crowd of requests waits for one instead of exhausting the server's
    # max_connections) and hands back open ones, checked before use.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them, not Django
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool checks a connection before lending it
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": _POOL_SIZE,
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/events/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Front-end libraries come from npm (package-lock.json, installed by scripts/setup),
# never copied into the repository; collectstatic gathers them with our own files.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"),
]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Lens keeps no uploads; a prefix of their own keeps Django's live test server from
# taking every path (/traces/..%2F…/ included) for a media file.
MEDIA_URL = "media/"

CACHES = {
    "default": (
        env.cache("CACHE_URL")
        if env.str("CACHE_URL", default="")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Celery: with no broker the ingest task runs in-process (the embedded default).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup would close the database connection around every task; lens/celery.py
# keeps it across tasks as Django does across requests (CONN_MAX_AGE, closed on errors).
CELERY_DB_REUSE_MAX = 10**9
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message a dead worker had taken comes back after this many seconds.
    "visibility_timeout": env.int("LENS_BROKER_VISIBILITY_TIMEOUT", default=300),
    # ...once a live worker sweeps for it: kombu's default sweep runs only every ~100 s
    # (10 s x every 10th call), holding a dead worker's acknowledged events that much longer.
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TASK_DEFAULT_QUEUE = env.str("LENS_CELERY_QUEUE", default="lens")
# Callables told, after commit, of each batch of newly stored events (audit/ingest/store.py after_store).
LENS_AFTER_STORE = ["audit.alerts.tasks.events_stored", "audit.explore.live.events_stored"]
# Each room of audit/ keeps its own tasks.
CELERY_IMPORTS = (
    "audit.ingest.tasks", "audit.integrity.tasks", "audit.alerts.tasks", "audit.otlp.tasks", "audit.retention.tasks",
)

# --- Ingest limits (stated in the API docs).
LENS_MAX_BODY_BYTES = env.int("LENS_MAX_BODY_BYTES", default=16 * 1024 * 1024)
LENS_MAX_BATCH_EVENTS = env.int("LENS_MAX_BATCH_EVENTS", default=5000)
LENS_MAX_EVENT_BYTES = env.int("LENS_MAX_EVENT_BYTES", default=256 * 1024)
# An event's timestamp may be at most this far ahead of Lens's clock (the gateway's may
# run ahead) and at most this old; others are `invalid` in their receipt.
LENS_MAX_CLOCK_SKEW_SECONDS = env.int("LENS_MAX_CLOCK_SKEW_SECONDS", default=300)
LENS_MAX_EVENT_AGE_DAYS = env.int("LENS_MAX_EVENT_AGE_DAYS", default=3650)
LENS_INGEST_RATE = env.str("LENS_INGEST_RATE", default="600/min")
LENS_READ_RATE = env.str("LENS_READ_RATE", default="1200/min")
# Failed API-key attempts allowed per client address and window; past it, 429.
LENS_AUTH_FAILURE_RATE = env.str("LENS_AUTH_FAILURE_RATE", default="30/min")
# A page of a trace's chain in the API holds about this many bytes of events at most.
LENS_TRACE_PAGE_BYTES = env.int("LENS_TRACE_PAGE_BYTES", default=1024 * 1024)
# Failed logins allowed per username and per client address in a window; past either,
# the login form refuses with 429 until the window ends.
LENS_LOGIN_FAILURES_PER_USERNAME = env.str("LENS_LOGIN_FAILURES_PER_USERNAME", default="10/h")
LENS_LOGIN_FAILURES_PER_ADDRESS = env.str("LENS_LOGIN_FAILURES_PER_ADDRESS", default="50/h")
# The most buckets one histogram answer draws (a longer window needs a longer interval).
LENS_HISTOGRAM_MAX_BUCKETS = env.int("LENS_HISTOGRAM_MAX_BUCKETS", default=2_000)
# The live tail (audit/explore/live.py): where the worker tells web processes that events
# were stored (default: the Celery broker when it is Redis), how often a stream reads the
# database without being told, the keep-alive comment, a stream's lifetime (the client
# reconnects with Last-Event-ID) and the events one read sends at most.
LENS_LIVE_REDIS_URL = env.str("LENS_LIVE_REDIS_URL", default=CELERY_BROKER_URL)
LENS_STREAM_POLL_SECONDS = env.float("LENS_STREAM_POLL_SECONDS", default=1.0)
LENS_STREAM_KEEPALIVE_SECONDS = env.float("LENS_STREAM_KEEPALIVE_SECONDS", default=15.0)
LENS_STREAM_MAX_SECONDS = env.float("LENS_STREAM_MAX_SECONDS", default=3600.0)
LENS_STREAM_READ_EVENTS = env.int("LENS_STREAM_READ_EVENTS", default=500)
# Exports one web process streams at once; past it, 503 with Retry-After. Each holds a
# database connection for its whole download, at the client's pace: under a pool (ASGI)
# half of it, so slow downloads cannot starve every other request of the process.
LENS_EXPORTS_PER_PROCESS = env.int("LENS_EXPORTS_PER_PROCESS", default=max(1, _POOL_SIZE // 2) if _POOL_SIZE else 8)
# How many proxies in front of Lens append to X-Forwarded-For; 0 trusts only
# REMOTE_ADDR, so a client cannot choose the address its throttles and access records see.
LENS_NUM_PROXIES = env.int("LENS_NUM_PROXIES", default=0)
# Seconds a client should wait before retrying when the queue is unreachable.
LENS_RETRY_AFTER_SECONDS = env.int("LENS_RETRY_AFTER_SECONDS", default=5)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "audit.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["audit.api.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"ingest": LENS_INGEST_RATE, "read": LENS_READ_RATE},
    "UNAUTHENTICATED_USER": None,
    # A database outage is a 503 with Retry-After, not a 500.
    "EXCEPTION_HANDLER": "audit.api.errors.api_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Lens audit-events API",
    "DESCRIPTION": "Ingest, query and export the audit trail of an MCP tool-call gateway.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No deep links: Swagger UI puts them inside the operation's toggle button (nested controls).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"DestinationKindEnum": "audit.alerts.models.Destination.Kind"},
    # Request bodies get components of their own (`DestinationRequest`), without the read-only
    # fields an answer has: generated clients build requests from them.
    "COMPONENT_SPLIT_REQUEST": True,
    # Response headers (Retry-After, Link) and the 503 of a database outage (audit/api/schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "audit.api.schema.declare_response_headers"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"audit": {"handlers": ["console"], "level": env.str("LENS_LOG_LEVEL", default="INFO")}},
}

if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Tamper evidence: `celery -A lens beat` signs every organization's chain head into a
# checkpoint and verifies its chain from the last verified checkpoint (audit.verify_chains)
# this often; from seq 1 when no full pass finished within LENS_VERIFY_FULL_EVERY seconds.
# Without beat, use the cron lines in docs/integrity.md.
LENS_VERIFY_CHAINS_EVERY = env.int("LENS_VERIFY_CHAINS_EVERY", default=3600)
LENS_VERIFY_FULL_EVERY = env.int("LENS_VERIFY_FULL_EVERY", default=86400)
# The secret the organizations' private signing keys are encrypted under (docs/integrity.md:
# keep it apart from the database backups). Without it Lens signs nothing, except in
# development (DEBUG), where one derived from SECRET_KEY stands in.
LENS_SIGNING_KEY_SECRET = env.str("LENS_SIGNING_KEY_SECRET", default=SECRET_KEY if DEBUG else "")
# Optional: a copy of every checkpoint, where the customer keeps it ("{org}" is replaced
# by the organization's slug): files in a directory, and/or a POST of its JSON to a URL.
LENS_CHECKPOINT_PUBLISH_DIR = env.str("LENS_CHECKPOINT_PUBLISH_DIR", default="")
LENS_CHECKPOINT_PUBLISH_URL = env.str("LENS_CHECKPOINT_PUBLISH_URL", default="")
LENS_CHECKPOINT_PUBLISH_TIMEOUT = env.float("LENS_CHECKPOINT_PUBLISH_TIMEOUT", default=10.0)
# Accepted batches still pending after this many seconds are stored by the sweep
# (their queue message was lost, or they failed); the sweep runs this often.
LENS_SWEEP_AFTER_SECONDS = env.int("LENS_SWEEP_AFTER_SECONDS", default=120)
LENS_SWEEP_EVERY = env.int("LENS_SWEEP_EVERY", default=60)

# --- Alerts and streaming out (SPEC §12, docs/alerts.md).
# Hosts a destination may name although they resolve to private addresses (e.g. 127.0.0.1,
# an internal SIEM); every other destination must resolve to public addresses only.
LENS_DESTINATION_ALLOWED_HOSTS = env.list("LENS_DESTINATION_ALLOWED_HOSTS", default=[])
# Where people reach Lens (https://lens.example.com): Slack messages link to the event there.
LENS_BASE_URL = env.str("LENS_BASE_URL", default="")
# Seconds to wait for a destination's answer (connecting: at most 5).
LENS_DELIVERY_TIMEOUT = env.float("LENS_DELIVERY_TIMEOUT", default=10.0)
# A delivery is retried this long; a destination failing everything this long is paused.
LENS_DELIVERY_RETRY_FOR = env.int("LENS_DELIVERY_RETRY_FOR", default=24 * 3600)
# A dead sender's destination is taken over after this many seconds (> one POST's timeout).
LENS_DELIVERY_LEASE = env.int("LENS_DELIVERY_LEASE", default=60)
# One sending task's time on a destination before it hands over to a fresh task.
LENS_DELIVERY_RUN_SECONDS = env.float("LENS_DELIVERY_RUN_SECONDS", default=50.0)
# Events per POST of a stream (a rule whose query is *).
LENS_STREAM_BATCH = env.int("LENS_STREAM_BATCH", default=500)
# The catch-up: match what no after-store hook announced, and send retries that are due.
LENS_ALERTS_CATCH_UP_EVERY = env.float("LENS_ALERTS_CATCH_UP_EVERY", default=10.0)

# --- OTLP ingest (SPEC §13, docs/otlp.md): an MCP call span with no decision of its own
# waits this long for an apply_guardrail child span from a later export request; spans are
# remembered this long (resends, late guardrails); the periodic flush runs this often.
LENS_OTLP_GUARDRAIL_WAIT = env.int("LENS_OTLP_GUARDRAIL_WAIT", default=10)
LENS_OTLP_KEEP_SECONDS = env.int("LENS_OTLP_KEEP_SECONDS", default=86400)
LENS_OTLP_FLUSH_EVERY = env.int("LENS_OTLP_FLUSH_EVERY", default=5)
# --- Retention (docs/retention.md): `celery -A lens beat` makes the coming days' partitions
# (PostgreSQL) and applies every organization's retention this often.
LENS_RETENTION_EVERY = env.int("LENS_RETENTION_EVERY", default=3600)
LENS_PARTITIONS_AHEAD_DAYS = env.int("LENS_PARTITIONS_AHEAD_DAYS", default=7)
CELERY_BEAT_SCHEDULE = {
    "apply-retention": {"task": "audit.apply_retention", "schedule": LENS_RETENTION_EVERY},
    "verify-chains": {"task": "audit.verify_chains", "schedule": LENS_VERIFY_CHAINS_EVERY},
    "sweep-pending-batches": {"task": "audit.sweep_pending_batches", "schedule": LENS_SWEEP_EVERY},
    "alerts-catch-up": {"task": "audit.alerts_catch_up", "schedule": LENS_ALERTS_CATCH_UP_EVERY},
    "flush-otlp-spans": {"task": "audit.otlp_flush", "schedule": LENS_OTLP_FLUSH_EVERY},
}
