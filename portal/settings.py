"""Modelport settings: everything comes from environment variables (see README, "Configuration").

`PORTAL_ENV=development` (the default) needs nothing set: SQLite under var/, a filesystem broker
under var/, a generated secret key. `PORTAL_ENV=production` requires a real SECRET_KEY and
ALLOWED_HOSTS and turns on every switch `manage.py check --deploy` asks for.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal import env

ENVIRON = os.environ
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.read_str(ENVIRON, "VAR_DIR") or BASE_DIR / "var")

PORTAL_ENV = env.read_choice(ENVIRON, "PORTAL_ENV", env.PORTAL_ENVS, "development")
PRODUCTION = PORTAL_ENV == "production"

SECRET_KEY = env.read_secret_key(
    ENVIRON, "SECRET_KEY", production=PRODUCTION, keep=VAR_DIR / "secret_key"
)
DEBUG = env.read_bool(ENVIRON, "DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.read_list(
    ENVIRON, "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS: is required when PORTAL_ENV=production")
CSRF_TRUSTED_ORIGINS = env.read_list(ENVIRON, "CSRF_TRUSTED_ORIGINS", [])

# Where the portal links people to; used in emails and webhook registration.
PORTAL_BASE_URL = env.read_http_url(ENVIRON, "PORTAL_BASE_URL") or "http://127.0.0.1:8000"

MLFLOW_TRACKING_URI = env.read_http_url(ENVIRON, "MLFLOW_TRACKING_URI")
# Where people open MLflow's own UI, if not at the tracking URI (e.g. behind a proxy).
MLFLOW_UI_URL = env.read_http_url(ENVIRON, "MLFLOW_UI_URL")
# Shared with MLflow to sign webhook deliveries; without it /hooks/mlflow/ answers 503.
MLFLOW_WEBHOOK_SECRET = env.read_str(ENVIRON, "MLFLOW_WEBHOOK_SECRET") or (
    ""
    if PRODUCTION
    else env.kept_secret(
        VAR_DIR / "mlflow_webhook_secret", fallback="modelport-development-webhook-secret"
    )
)
MLFLOW_WEBHOOK_MAX_AGE_SECONDS = env.read_int(
    ENVIRON, "MLFLOW_WEBHOOK_MAX_AGE_SECONDS", 300, minimum=5
)
# Alertmanager's bearer token (or basic-auth password) for /hooks/alertmanager/; without it
# that receiver answers 503.
ALERTMANAGER_WEBHOOK_TOKEN = env.read_str(ENVIRON, "ALERTMANAGER_WEBHOOK_TOKEN")
# The MLflow client retries 7 times with long backoff by default: minutes before a sync learns
# the server is down. Fail sooner and let the task's own retry schedule take over.
for _name, _default in (
    ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"),
    ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
    ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20"),
):
    os.environ.setdefault(_name, _default)
CATALOG_SYNC_SECONDS = env.read_int(ENVIRON, "CATALOG_SYNC_SECONDS", 60, minimum=5)
CATALOG_FULL_SYNC_SECONDS = env.read_int(ENVIRON, "CATALOG_FULL_SYNC_SECONDS", 1800, minimum=60)
# Members of this team (and staff) review model cards.
CATALOG_CARD_REVIEWER_TEAM = env.read_str(ENVIRON, "CATALOG_CARD_REVIEWER_TEAM") or "risk-review"
# A Slack-compatible incoming-webhook URL for approval notifications; e-mail is always sent.
APPROVALS_CHAT_WEBHOOK_URL = env.read_http_url(ENVIRON, "APPROVALS_CHAT_WEBHOOK_URL")
KUBECONFIG = env.read_existing_file(ENVIRON, "KUBECONFIG")
# The durable hand-off (apps/jobs/handoff.py): how often beat re-drives work that is not done,
# and how long after it was recorded (webhook deliveries, approval effects, notifications).
HANDOFF_REDRIVE_SECONDS = env.read_int(ENVIRON, "HANDOFF_REDRIVE_SECONDS", 30, minimum=1)
HANDOFF_GRACE_SECONDS = env.read_int(ENVIRON, "HANDOFF_GRACE_SECONDS", 60, minimum=1)
# Deploy requests: how often a worker looks at a rollout, when a request counts as stuck (the
# re-drive hands it to another worker), how often the drift check runs, how many times an
# apply is attempted, and how long past an environment's progress deadline the portal waits.
DEPLOY_CHECK_INTERVAL_MS = env.read_int(ENVIRON, "DEPLOY_CHECK_INTERVAL_MS", 3000, minimum=50)
DEPLOY_HEARTBEAT_SECONDS = env.read_int(ENVIRON, "DEPLOY_HEARTBEAT_SECONDS", 120, minimum=1)
DEPLOY_DRIFT_SECONDS = env.read_int(ENVIRON, "DEPLOY_DRIFT_SECONDS", 300, minimum=10)
DEPLOY_MAX_ATTEMPTS = env.read_int(ENVIRON, "DEPLOY_MAX_ATTEMPTS", 5, minimum=1)
DEPLOY_DEADLINE_MARGIN_SECONDS = env.read_int(
    ENVIRON, "DEPLOY_DEADLINE_MARGIN_SECONDS", 60, minimum=0
)

# No API token lives longer than this, whatever it was created with (tokens made before the
# cap included): a leaked token cannot be a permanent one.
API_TOKEN_MAX_DAYS = env.read_int(ENVIRON, "API_TOKEN_MAX_DAYS", 90, minimum=1)

OIDC = env.read_oidc(ENVIRON)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "django_prometheus",
    "django_structlog",
    "rules.apps.AutodiscoverRulesConfig",
    "axes",
    "csp",
    "apps.web",
    "apps.audit",
    "apps.jobs",
    "apps.accounts",
    "apps.catalog",
    "apps.approvals",
    "apps.deployments",
    "apps.incidents",
    "apps.simcluster",
    "portal",
]
if OIDC:
    INSTALLED_APPS.append("mozilla_django_oidc")

MIDDLEWARE = [
    # Outermost: a request no honest client sends is refused before anything reads it.
    "apps.web.request_limits.RequestLimitsMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.web.middleware.RejectNulCharactersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.web.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "apps.web.middleware.RequestIdHeaderMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.portal",
            ],
        },
    },
]

DATABASES = {"default": env.read_database(ENVIRON, "DATABASE_URL", VAR_DIR / "portal.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Brute-force protection on the login form: 5 failures for a username from one address lock
# that pair for 15 minutes.
AXES_FAILURE_LIMIT = env.read_int(ENVIRON, "AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"

if OIDC:
    AUTHENTICATION_BACKENDS.append("apps.accounts.oidc.PortalOIDCBackend")
    OIDC_RP_CLIENT_ID = OIDC["OIDC_RP_CLIENT_ID"]
    OIDC_RP_CLIENT_SECRET = OIDC["OIDC_RP_CLIENT_SECRET"]
    OIDC_OP_AUTHORIZATION_ENDPOINT = OIDC["OIDC_OP_AUTHORIZATION_ENDPOINT"]
    OIDC_OP_TOKEN_ENDPOINT = OIDC["OIDC_OP_TOKEN_ENDPOINT"]
    OIDC_OP_USER_ENDPOINT = OIDC["OIDC_OP_USER_ENDPOINT"]
    OIDC_OP_JWKS_ENDPOINT = OIDC.get("OIDC_OP_JWKS_ENDPOINT", "")
    OIDC_RP_SIGN_ALGO = OIDC["OIDC_RP_SIGN_ALGO"]
    OIDC_RP_SCOPES = "openid email profile"
    OIDC_PROVIDER_NAME = OIDC["OIDC_PROVIDER_NAME"]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# None in the test settings, which collect nothing.
STATIC_ROOT: Path | None = Path(env.read_str(ENVIRON, "STATIC_ROOT") or VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Large bodies are refused (413 in the API, 400 in forms) before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

SESSION_COOKIE_AGE = 12 * 60 * 60
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env.read_bool(ENVIRON, "SECURE_SSL_REDIRECT", default=True)
    # Probes and the metrics scraper talk plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    if env.read_bool(ENVIRON, "TRUST_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.web.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "apps.web.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "apps.web.api_errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Modelport API",
    "DESCRIPTION": "Model catalog, approvals, deploy requests and incidents. "
    "Authenticate with `Authorization: Bearer <token>` (create one on your profile page).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Several models have a "state" or "status"; name each choice set after its owner.
    "ENUM_NAME_OVERRIDES": {
        "ApprovalStateEnum": "apps.approvals.models.ApprovalRequest.State",
        "PromotionStateEnum": "apps.approvals.models.AliasPromotion.State",
        "ModelCardStatusEnum": "apps.catalog.models.ModelCard.Status",
        "PromotionOutcomeEnum": [("moved", "moved"), ("pending_approval", "pending_approval")],
        "DeployRequestStateEnum": "apps.deployments.models.DeployRequest.State",
        "DeployRequestKindEnum": "apps.deployments.models.DeployRequest.Kind",
        "DeployEventKindEnum": "apps.deployments.models.DeployEvent.Kind",
        "DeployBlockerKindEnum": [
            ("freeze", "freeze"),
            ("window", "window"),
            ("promotion", "promotion"),
        ],
    },
}

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.read_broker_url(ENVIRON, "CELERY_BROKER_URL")
# Redis re-delivers an unacknowledged task after the visibility timeout; it must exceed the
# longest task plus any countdown, or a slow task runs twice. Sending gives up within a second
# when the broker is down: the row already records the work and beat re-drives it, so a web
# request must not wait for the broker.
REDIS_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": 7200,
    "socket_connect_timeout": 3,
    "socket_timeout": 10,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Folders the filesystem broker needs before Celery first sends or receives (portal/celery.py
# makes them then; reading the settings makes none).
QUEUE_FOLDERS: list[Path] = []
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_DIR = VAR_DIR / "broker"
    QUEUE_FOLDERS += [BROKER_DIR / sub for sub in ("queue", "processed", "control")]
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The filesystem transport polls; once a second by default is too slow for webhooks.
        "polling_interval": 0.1,
    }
    CELERY_RESULT_BACKEND = env.read_str(ENVIRON, "CELERY_RESULT_BACKEND") or (
        f"file://{VAR_DIR / 'celery-results'}"
    )
    QUEUE_FOLDERS.append(VAR_DIR / "celery-results")
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = REDIS_BROKER_TRANSPORT_OPTIONS
    CELERY_RESULT_BACKEND = env.read_str(ENVIRON, "CELERY_RESULT_BACKEND") or CELERY_BROKER_URL
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": 7200}
CELERY_RESULT_EXPIRES = 3600
# No task's caller reads its result (the rows are the truth); with results on, sending a task
# also subscribes to the result store, which hangs for ~20 s when Redis is down.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env.read_str(ENVIRON, "CELERY_TASK_DEFAULT_QUEUE") or "modelport"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "catalog-incremental-sync": {
        "task": "catalog.registry_sync",
        "schedule": CATALOG_SYNC_SECONDS,
        "kwargs": {"mode": "incremental"},
        "options": {"expires": CATALOG_SYNC_SECONDS},
    },
    "approvals-advance-due": {
        "task": "approvals.advance_due",
        "schedule": 60,
        "options": {"expires": 60},
    },
    "catalog-full-sync": {
        "task": "catalog.registry_sync",
        "schedule": CATALOG_FULL_SYNC_SECONDS,
        "kwargs": {"mode": "full"},
        "options": {"expires": CATALOG_FULL_SYNC_SECONDS},
    },
    "handoff-redrive": {
        "task": "jobs.redrive",
        "schedule": HANDOFF_REDRIVE_SECONDS,
        "options": {"expires": HANDOFF_REDRIVE_SECONDS},
    },
    "deployments-drift": {
        "task": "deployments.drift_check",
        "schedule": DEPLOY_DRIFT_SECONDS,
        "options": {"expires": DEPLOY_DRIFT_SECONDS},
    },
}
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = env.read_bool(ENVIRON, "CELERY_TASK_ALWAYS_EAGER", default=False)
# Celery would otherwise reconnect to the database for every task; portal/celery.py applies
# CONN_MAX_AGE and the health check at task boundaries instead, as Django does per request.
CELERY_DB_REUSE_MAX = 10_000
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# A proxy or caller may pass X-Request-ID so one id follows a request across services.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True

# --- Logging: JSON lines with the request id on every line ---------------------------------------
LOG_LEVEL = env.read_choice(ENVIRON, "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
LOG_FORMAT = env.read_choice(ENVIRON, "LOG_FORMAT", ("json", "console"), "json")
_shared_processors: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.processors.StackInfoRenderer(),
]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer()
                if LOG_FORMAT == "json"
                else structlog.dev.ConsoleRenderer(colors=False),
            ],
            "foreign_pre_chain": _shared_processors,
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django_structlog": {"level": LOG_LEVEL},
    },
}
structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *_shared_processors,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)

# --- Email (approval notifications in later features) --------------------------------------------
EMAIL_BACKEND = env.read_str(ENVIRON, "EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.read_str(ENVIRON, "DEFAULT_FROM_EMAIL") or "modelport@localhost"

PROMETHEUS_EXPORT_MIGRATIONS = False
