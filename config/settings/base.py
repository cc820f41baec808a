"""Settings shared by every environment, read from the process environment.

Only wiring lives here. Each variable is documented in the README ("Configuration").
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Local state of the embedded default (SQLite file, Celery's filesystem queues, dev secret).
VAR_DIR = Path(os.environ.get("PARCOURS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# What anonymous visitors may read: nothing, unless these open the pathway library (its
# definitions and diagrams) or the API's schema and docs.
PARCOURS_PUBLIC_LIBRARY = env_bool("PARCOURS_PUBLIC_LIBRARY", False)
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "guardian",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "knox",
    "channels",
    "csp",
    "axes",
    "workflows",
    "patients",
    "live",
    "directory",
    "coordination",
    "api",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "api.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The web UI's language (cookie, Accept-Language, French); the API's: Accept-Language, or
    # English.
    "api.middleware.ApiLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idle and absolute session limits (SESSION_IDLE_TIMEOUT, SESSION_ABSOLUTE_TIMEOUT).
    "web.sessions.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # The web UI's page-not-found for its own pages, DEBUG on or off (web.errors).
    "web.errors.NotFoundPageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Login lockout (django-axes): answers a locked-out login attempt; last, as axes asks.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy on every response: scripts, styles, fonts and images from this site
# only (every asset is served locally), no inline script or style, no framing, forms posted
# here only. The WebSocket is same-origin ('self' covers ws: and wss: on the same host).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
    # A platform's service account: the model permissions its OAuth2 scopes carry.
    "api.backends.PlatformScopeBackend",
]
# Object permissions are always checked against the direct foreign-key tables of each model;
# guardian's anonymous user is not used: anonymous requests see nothing.
ANONYMOUS_USER_NAME = None

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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
                # `psc_enabled`: the login page offers Pro Santé Connect (web.psc).
                "web.psc.login_options",
            ],
        },
    },
]


def _prepare_threshold() -> int | None:
    value = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5").strip()
    try:
        threshold = int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"DATABASE_PREPARE_THRESHOLD must be a whole number (0: never prepare), not {value!r}"
        ) from None
    if threshold < 0:
        raise ImproperlyConfigured(f"DATABASE_PREPARE_THRESHOLD must be 0 or more, not {threshold}")
    return threshold or None


def database_settings(url: str | None) -> dict[str, object]:
    """PostgreSQL (or any dj-database-url URL) when given; otherwise the embedded SQLite file.

    SQLite (the embedded file, or a `sqlite:///` URL) runs in WAL mode with IMMEDIATE
    transactions so that the web process and the Celery worker can share the file: a writer
    takes the write lock when its transaction starts instead of failing half-way with
    "database is locked".

    PostgreSQL connections come from a pool (psycopg_pool, one per process), not from
    Django's persistent connections: under ASGI every request runs in a thread of its own,
    and a per-thread persistent connection would mean a new PostgreSQL session (a server
    process forked, authenticated, its caches cold) for every request. A request borrows a
    connection on its first query and gives it back when it ends. DATABASE_POOL_MAX_SIZE
    (default 10) bounds the connections of a process: requests beyond it wait for one, at
    most DATABASE_POOL_TIMEOUT seconds (default 1). The wait is short on purpose: with the
    database unreachable, a request answers 503 (config.errors) within two seconds instead
    of hanging.

    Parameters are bound by the server, and a statement run DATABASE_PREPARE_THRESHOLD times
    (default 5) on a connection is prepared: PostgreSQL then plans it once per connection
    instead of on every request, a third of its work on a task action. Behind a connection
    pooler in transaction mode that does not track prepared statements (PgBouncer before
    1.21, or without `max_prepared_statements`), set DATABASE_PREPARE_THRESHOLD=0.
    """
    if url:
        config: dict[str, object] = dict(dj_database_url.parse(url))
        config.setdefault("CONN_HEALTH_CHECKS", True)
        if "postgresql" in str(config.get("ENGINE")):
            config["CONN_MAX_AGE"] = 0  # the pool keeps the connections
            config["OPTIONS"] = {
                "server_side_binding": True,
                "prepare_threshold": _prepare_threshold(),
                # libpq's own bound on opening a connection (an unreachable host).
                "connect_timeout": int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "2")),
                "pool": {
                    "min_size": int(os.environ.get("DATABASE_POOL_MIN_SIZE", "2")),
                    "max_size": int(os.environ.get("DATABASE_POOL_MAX_SIZE", "10")),
                    "timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "1")),
                    # The pool stops retrying in the background after this long; from then on
                    # each request that needs a connection tries one at once, so service comes
                    # back with the first request after the database does.
                    "reconnect_timeout": float(
                        os.environ.get("DATABASE_POOL_RECONNECT_TIMEOUT", "5")
                    ),
                },
            }
        elif config.get("ENGINE") == "django.db.backends.sqlite3":
            config.update(ENGINE=SQLITE_ENGINE, OPTIONS=SQLITE_OPTIONS)
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": SQLITE_ENGINE,
        "NAME": str(VAR_DIR / "parcours.sqlite3"),
        "OPTIONS": SQLITE_OPTIONS,
        "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
    }


# Django's SQLite backend with the sqlite3 module's thread check on (core/backends/sqlite3).
SQLITE_ENGINE = "core.backends.sqlite3"
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
}


DATABASE_URL = os.environ.get("DATABASE_URL") or None
DATABASES = {"default": database_settings(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL") or None

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, shorter than the blocking
            # pop channels_redis waits on for an idle connection: every idle WebSocket would
            # fail with 1011 after 5 s (django/channels_redis#422). No client-side read timeout.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    # One web process: the in-memory layer is enough (DESIGN.md, "Components").
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis when REDIS_URL is set (or CELERY_BROKER_URL explicitly), otherwise kombu's
# filesystem transport under var/ so that a real worker runs with no server at all.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_BROKER_DIR = VAR_DIR / "broker"
# A job is acknowledged only once it has run, and put back on the queue if the worker process
# running it dies: every job is idempotent, so running one twice is harmless, losing one is not.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "parcours")
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "240"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "300"))
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis (and SQS) redeliver a message nobody acknowledged after this many seconds (a worker
# killed mid-job). It must exceed the longest job (the hard time limit above); nothing is
# scheduled with a countdown (timers and reminders are rows), so no message waits longer.
CELERY_BROKER_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_BROKER_VISIBILITY_TIMEOUT", "600"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT,
    # Redis: look for such messages every interval x throttle seconds (kombu's default, 10 x 10).
    "unacked_restore_interval": int(os.environ.get("CELERY_BROKER_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": int(os.environ.get("CELERY_BROKER_RESTORE_THROTTLE", "10")),
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Failed jobs are retried with exponential backoff (1 s, 2 s, 4 s... at most this many
# times), then parked in coordination.DeadLetter.
CELERY_JOB_MAX_RETRIES = int(os.environ.get("CELERY_JOB_MAX_RETRIES", "5"))
# Periodic jobs: each sweeps rows whose due time has come, so a missed or doubled beat only
# moves work by one period.
CELERY_BEAT_SCHEDULE = {
    "sweep-due-timers": {"task": "coordination.timers_sweep", "schedule": 30.0},
    "send-due-reminders": {"task": "coordination.reminders_send", "schedule": 60.0},
    "escalate-overdue-tasks": {"task": "coordination.overdue_escalate", "schedule": 60.0},
    "check-missing-measurements": {
        "task": "coordination.missing_measurements_check",
        "schedule": 300.0,
    },
    "send-due-webhooks": {"task": "coordination.webhooks_send", "schedule": 10.0},
    "outbox-relay-backstop": {"task": "coordination.outbox_relay_backstop", "schedule": 30.0},
    "audit-chain-backstop": {"task": "coordination.audit_chain_backstop", "schedule": 10.0},
}
# The backstop job publishes outbox events left unpublished this long (seconds).
LIVE_RELAY_BACKSTOP_SECONDS = float(os.environ.get("LIVE_RELAY_BACKSTOP_SECONDS", "30"))
# Job thresholds (ISO-8601 durations): remind the owner this long before a task is due;
# escalate a task this long after it was due; a repeat of the same alert within the debounce
# window opens no new task.
PARCOURS_REMINDER_LEAD = os.environ.get("PARCOURS_REMINDER_LEAD", "PT2H")
PARCOURS_ESCALATION_GRACE = os.environ.get("PARCOURS_ESCALATION_GRACE", "PT15M")
PARCOURS_ALERT_DEBOUNCE = os.environ.get("PARCOURS_ALERT_DEBOUNCE", "PT12H")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Platforms: OAuth2 client credentials, acting as their service account.
        "api.authentication.PlatformOAuth2Authentication",
        # Scripts: personal API tokens ("Authorization: Token pct_...").
        "api.authentication.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Authenticated, and for OAuth2 tokens the scope of the route (api.scopes).
    "DEFAULT_PERMISSION_CLASSES": ["api.scopes.IsAuthenticatedWithScope"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Cursor",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "api.schema.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Rates per platform client, per user and per anonymous address (api.throttling).
    "DEFAULT_THROTTLE_CLASSES": [
        "api.throttling.PlatformClientThrottle",
        "api.throttling.UserThrottle",
        "api.throttling.AnonymousThrottle",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Decimals (observation and parameter values) are JSON numbers in answers, as in requests.
    "COERCE_DECIMAL_TO_STRING": False,
}

API_THROTTLE_RATES = {
    "platform": os.environ.get("API_RATE_PLATFORM", "6000/minute"),
    "user": os.environ.get("API_RATE_USER", "1200/minute"),
    "anonymous": os.environ.get("API_RATE_ANONYMOUS", "120/minute"),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Parcours API",
    "DESCRIPTION": (
        "Care pathways as versioned state machines: definitions, pathways, tasks. "
        "Errors are application/problem+json."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs for API callers (any authentication), or anyone when
    # API_DOCS_PUBLIC is on.
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.AllowAny"
        if API_DOCS_PUBLIC
        else "rest_framework.permissions.IsAuthenticated"
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "coordination.models.Task.Status",
        "DefinitionStatusEnum": "workflows.models.PathwayDefinition.Status",
        "RiskBandEnum": "coordination.models.RiskBand",
    },
}

# OAuth2 for platforms: client credentials, scopes per resource family (api.scopes maps every
# route to its family). A platform's application may ask for at most the scopes recorded on
# its PlatformAccount (api.scopes.PlatformScopes).
OAUTH2_PROVIDER = {
    "SCOPES": {
        "pathways:read": "Read pathway definitions and pathways",
        "pathways:write": (
            "Start pathways, fire events, set per-patient monitoring parameters, and upload and "
            "publish pathway definitions"
        ),
        "tasks:read": "Read tasks",
        "tasks:write": "Act on tasks",
        "patients:read": "Read patients, their care teams and consents",
        "patients:write": "Register and update patients, consents and care teams",
        "observations:read": "Read observations",
        "observations:write": "Record observations",
        "audit:read": "Read a patient's access audit trail",
        "directory:read": "Read organisations, practitioners and service teams",
        "directory:write": "Create organisations, practitioners and service teams",
        "webhooks:read": "Read the client's webhook subscriptions and their delivery log",
        "webhooks:write": "Subscribe to events by webhook, and end subscriptions",
        "live:write": "Obtain short-lived tokens for the live-updates WebSocket",
    },
    "SCOPES_BACKEND_CLASS": "api.scopes.PlatformScopes",
    # The client-credentials grant and nothing else: no authorisation endpoint, no code,
    # password, refresh or device grant (unsupported_grant_type); revocation; introspection.
    "OAUTH2_SERVER_CLASS": "oauthlib.oauth2.BackendApplicationServer",
    "OAUTH2_BACKEND_CLASS": "api.oauth2.ParcoursOAuthLibCore",
    # The toolkit's validator, with the bearer token read in one written statement.
    "OAUTH2_VALIDATOR_CLASS": "api.oauth2.ParcoursOAuth2Validator",
    "ERROR_RESPONSE_WITH_SCOPES": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "PKCE_REQUIRED": True,
    # OAuth 2.0 Security BCP (RFC 9700): no implicit or password grant, no "plain" PKCE, no
    # tokens in query strings.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}

# Signed-in sessions (web.sessions) end this long after their last request, and this long
# after logging in at the latest, whichever comes first: pages, the session-authenticated
# API and the live WebSocket alike.
SESSION_IDLE_TIMEOUT = dt.timedelta(minutes=float(os.environ.get("SESSION_IDLE_MINUTES", "30")))
SESSION_ABSOLUTE_TIMEOUT = dt.timedelta(hours=float(os.environ.get("SESSION_MAX_HOURS", "12")))
# A session nobody signed in to (a language choice) lasts as long as an idle one.
SESSION_COOKIE_AGE = int(SESSION_IDLE_TIMEOUT.total_seconds())

# The access audit trail (docs/audit.md). AUDIT_CHAIN_KEY (set by local.py / production.py)
# keys the hash chain; keys that chained older records stay listed here, comma-separated, so
# those records can still be verified after a rotation.
AUDIT_CHAIN_KEY_FALLBACKS = env_list("AUDIT_CHAIN_KEY_FALLBACKS", [])
# The backstop job anchors the chain head outside the database (a signed checkpoint appended
# to AUDIT_CHECKPOINT_DIR) at most this often, in seconds, when the chain has grown.
AUDIT_CHECKPOINT_SECONDS = float(os.environ.get("AUDIT_CHECKPOINT_SECONDS", "60"))

# How long a break-the-glass grant opens a record for (read-only, audited).
BREAK_GLASS_DURATION = dt.timedelta(hours=float(os.environ.get("BREAK_GLASS_HOURS", "4")))

# Personal API tokens for scripts (django-rest-knox, wrapped by api.services.api_tokens):
# stored as SHA-512 digests, recognisable by their prefix (secret scanners), 90 days by default.
# knox's default token model is swapped for api.ApiToken. knox's own migrations create its
# default table anyway (they do not declare the model swappable): its migrations are
# replaced by api/knox_migrations, which declare it swapped (no table) and drop
# the table those migrations left in databases created before.
MIGRATION_MODULES = {"knox": "api.knox_migrations"}
KNOX_TOKEN_MODEL = "api.ApiToken"  # noqa: S105  # a model name, not a secret
REST_KNOX = {
    "TOKEN_PREFIX": "pct_",
    "TOKEN_TTL": dt.timedelta(days=int(os.environ.get("API_TOKEN_DAYS", "90"))),
    "AUTO_REFRESH": False,
}

# Login lockout (django-axes) on the web login, the admin login and the OAuth2 token endpoint:
# LOGIN_FAILURE_LIMIT failures for one username (or client id) from one address lock that
# pair out for LOGIN_LOCKOUT_MINUTES, even with the right password; a success resets the
# count. Attempts are counted in the database, shared by every process. Logins and failures
# are written to the audit trail (web.login_audit), not to axes' own access log.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
AXES_LOCKOUT_CALLABLE = "config.errors.locked_out"
AXES_VERBOSE = False

# Pro Santé Connect (PSC, web.psc): professionals sign in with the national identity provider
# (OpenID Connect, authorisation code with PKCE and nonce; mozilla-django-oidc). Off unless
# PSC_CLIENT_ID is set; then the provider is PSC_ISSUER (its endpoints read from its discovery
# document) or the endpoints given one by one, which take precedence. Practitioners are
# matched by RPPS number; nobody is created (directory.services.psc).
PSC_CLIENT_ID = os.environ.get("PSC_CLIENT_ID", "")
PSC_CLIENT_SECRET = os.environ.get("PSC_CLIENT_SECRET", "")
PSC_ISSUER = os.environ.get("PSC_ISSUER", "").rstrip("/")
# The issuer's metadata; empty: <issuer>/.well-known/openid-configuration. PSC publishes its
# own as <issuer>/.well-known/wallet-openid-configuration.
PSC_DISCOVERY_URL = os.environ.get("PSC_DISCOVERY_URL", "")
PSC_AUTHORIZATION_ENDPOINT = os.environ.get("PSC_AUTHORIZATION_ENDPOINT", "")
PSC_TOKEN_ENDPOINT = os.environ.get("PSC_TOKEN_ENDPOINT", "")
PSC_USERINFO_ENDPOINT = os.environ.get("PSC_USERINFO_ENDPOINT", "")
PSC_JWKS_ENDPOINT = os.environ.get("PSC_JWKS_ENDPOINT", "")
PSC_END_SESSION_ENDPOINT = os.environ.get("PSC_END_SESSION_ENDPOINT", "")
PSC_SCOPES = os.environ.get("PSC_SCOPES", "openid scope_all")
# The level of assurance asked for (PSC expects eidas1); empty: none asked.
PSC_ACR_VALUES = os.environ.get("PSC_ACR_VALUES", "eidas1")
PSC_SIGN_ALGORITHM = os.environ.get("PSC_SIGN_ALGORITHM", "RS256")
# How the client authenticates at the token endpoint: client_secret_basic or client_secret_post.
PSC_TOKEN_AUTH_METHOD = os.environ.get("PSC_TOKEN_AUTH_METHOD", "client_secret_basic")
PSC_TIMEOUT_SECONDS = float(os.environ.get("PSC_TIMEOUT_SECONDS", "10"))
PSC_ENABLED = bool(PSC_CLIENT_ID)
if PSC_ENABLED:
    _psc_endpoints = [
        PSC_AUTHORIZATION_ENDPOINT, PSC_TOKEN_ENDPOINT, PSC_USERINFO_ENDPOINT, PSC_JWKS_ENDPOINT
    ]  # fmt: skip
    if not PSC_ISSUER and not all(_psc_endpoints):
        raise ImproperlyConfigured(
            "PSC_CLIENT_ID is set: set PSC_ISSUER too, or PSC_AUTHORIZATION_ENDPOINT, "
            "PSC_TOKEN_ENDPOINT, PSC_USERINFO_ENDPOINT and PSC_JWKS_ENDPOINT"
        )
    # ID tokens signed with the provider's published keys (JWKS), never with a shared secret.
    if PSC_SIGN_ALGORITHM not in {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}:
        raise ImproperlyConfigured(
            f"PSC_SIGN_ALGORITHM must be RS256 (PSC's), RS384, RS512 or ES256-512, "
            f"not {PSC_SIGN_ALGORITHM!r}"
        )
    if not PSC_CLIENT_SECRET:
        raise ImproperlyConfigured("PSC_CLIENT_ID is set: set PSC_CLIENT_SECRET too")
    if PSC_TOKEN_AUTH_METHOD not in {"client_secret_basic", "client_secret_post"}:
        raise ImproperlyConfigured(
            "PSC_TOKEN_AUTH_METHOD must be client_secret_basic or client_secret_post, "
            f"not {PSC_TOKEN_AUTH_METHOD!r}"
        )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


# Outgoing e-mail (invitations, password resets): EMAIL_URL names the backend and server,
# smtp://user:password@host:587 (STARTTLS), smtps://user:password@host:465 (TLS from the
# start), smtp://host:25 (plain, a relay on the same network), console:// (printed: the
# embedded default), locmem:// or dummy://. Parsed by email_settings below.
def email_settings(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    backends = {
        "console": "django.core.mail.backends.console.EmailBackend",
        "locmem": "django.core.mail.backends.locmem.EmailBackend",
        "dummy": "django.core.mail.backends.dummy.EmailBackend",
        "smtp": "django.core.mail.backends.smtp.EmailBackend",
        "smtps": "django.core.mail.backends.smtp.EmailBackend",
    }
    if parts.scheme not in backends:
        raise ImproperlyConfigured(
            f"EMAIL_URL: the scheme must be one of {', '.join(backends)}, not {parts.scheme!r}"
        )
    config: dict[str, object] = {"EMAIL_BACKEND": backends[parts.scheme]}
    if parts.scheme in {"smtp", "smtps"}:
        if not parts.hostname:
            raise ImproperlyConfigured("EMAIL_URL: an smtp URL names its host")
        config.update(
            EMAIL_HOST=parts.hostname,
            EMAIL_PORT=parts.port or (465 if parts.scheme == "smtps" else 587),
            EMAIL_HOST_USER=unquote(parts.username or ""),
            EMAIL_HOST_PASSWORD=unquote(parts.password or ""),
            EMAIL_USE_SSL=parts.scheme == "smtps",
            # STARTTLS whenever a password is sent, or on the submission port.
            EMAIL_USE_TLS=parts.scheme == "smtp"
            and (bool(parts.password) or parts.port in {None, 587}),
            EMAIL_TIMEOUT=int(os.environ.get("EMAIL_TIMEOUT", "10")),
        )
    return config


EMAIL_URL = os.environ.get("EMAIL_URL") or "console://"
globals().update(email_settings(EMAIL_URL))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "Parcours <no-reply@localhost>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The address of the site as people reach it (https://parcours.example.org), for the links
# in e-mails. Empty: the address the request that sent the e-mail came to (a platform calling
# the API by an internal name would then send links nobody else can open).
PARCOURS_PUBLIC_URL = os.environ.get("PARCOURS_PUBLIC_URL", "").rstrip("/")
# Invitation links (directory.services.invitations) stay valid this many days, once.
INVITATION_LIFETIME = dt.timedelta(days=float(os.environ.get("INVITATION_DAYS", "7")))
# Password reset links stay valid this long (seconds), once (Django's setting).
PASSWORD_RESET_TIMEOUT = int(float(os.environ.get("PASSWORD_RESET_HOURS", "24")) * 3600)
# Password reset requests (web.password_reset): per address of the requester, and e-mails
# sent per account; beyond these the page answers 429 / sends nothing (same page shown).
PASSWORD_RESET_RATE_ADDRESS = os.environ.get("PASSWORD_RESET_RATE_ADDRESS", "10/hour")
PASSWORD_RESET_RATE_ACCOUNT = os.environ.get("PASSWORD_RESET_RATE_ACCOUNT", "3/hour")

LANGUAGE_CODE = "fr"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
# English pages write dates day first, on a 24-hour clock (config/formats/en).
FORMAT_MODULE_PATH = ["config.formats"]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic puts the files whitenoise serves (production: run it at each release).
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DATA_UPLOAD_MAX_MEMORY_SIZE = int(
    os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(2 * 1024 * 1024))
)
# Largest request body the REST API accepts (a batch of 1000 observations is ~200 KB).
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(2 * 1024 * 1024)))
# Deepest JSON body the REST API parses (its requests are a few levels deep).
API_MAX_JSON_DEPTH = int(os.environ.get("API_MAX_JSON_DEPTH", "32"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # axes logs every attempt at INFO; the audit trail records them (web.login_audit).
    "loggers": {"axes": {"level": "WARNING"}},
}

# Webhooks: deliveries only to public https addresses (no requests into the hosting network).
# The embedded default allows http and private addresses, for a receiver on the same laptop.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
# Deliveries sent per run of the periodic job (every 10 s, see CELERY_BEAT_SCHEDULE).
WEBHOOK_SEND_BATCH = int(os.environ.get("WEBHOOK_SEND_BATCH", "100"))
# Which ASGI handler serves HTTP: "project" (config.handlers: the middleware stack run in one
# thread hand-over, on threads kept between requests) or "django" (Django's own). The
# project's stays the default while bench/api_transitions.py --compare measures it faster in
# the same run (docs/request-path.md); "django" is there to measure against.
HTTP_HANDLER = os.environ.get("HTTP_HANDLER", "project")
if HTTP_HANDLER not in {"project", "django"}:
    raise ImproperlyConfigured(f"HTTP_HANDLER must be project or django, not {HTTP_HANDLER!r}")
# Live updates (docs/live-updates.md). Intervals in seconds.
# The outbox relay runs inside each web process unless turned off (then run
# `manage.py run_relay`); several relays at once are safe.
LIVE_RELAY_EMBEDDED = env_bool("LIVE_RELAY_EMBEDDED", True)
LIVE_RELAY_POLL_SECONDS = float(os.environ.get("LIVE_RELAY_POLL_SECONDS", "0.05"))
# On PostgreSQL the relay LISTENs (committed events wake it at once) and only polls this often
# as a safety net.
LIVE_RELAY_LISTEN_FALLBACK_SECONDS = float(
    os.environ.get("LIVE_RELAY_LISTEN_FALLBACK_SECONDS", "1.0")
)
# The least time between two passes of the leading relay: commits that come sooner after a
# pass are gathered into the next one; a commit after a quiet moment is published at once.
LIVE_RELAY_GATHER_SECONDS = float(os.environ.get("LIVE_RELAY_GATHER_SECONDS", "0.05"))
# One relay publishes at a time (in position order); one stalled in the middle of a pass for
# longer than this has its database session ended by PostgreSQL, and another takes over.
LIVE_RELAY_STALL_SECONDS = float(os.environ.get("LIVE_RELAY_STALL_SECONDS", "10"))
LIVE_HEARTBEAT_SECONDS = float(os.environ.get("LIVE_HEARTBEAT_SECONDS", "25"))
# How long a connection trusts what it read of the user's permissions: losing access to a
# patient stops that patient's events within this delay (at most 5 s is the promise).
# What a live connection's user may receive (live.consumers asks it, for many users at once):
# the directory knows who sees which patients; the live app sits below it and is told here.
LIVE_ACCESS_READER = "directory.selectors.live_access_many"
LIVE_ACCESS_CACHE_SECONDS = float(os.environ.get("LIVE_ACCESS_CACHE_SECONDS", "2"))
# How often a connection checks that its session still exists and its user is active.
LIVE_SESSION_CHECK_SECONDS = float(os.environ.get("LIVE_SESSION_CHECK_SECONDS", "3"))
# Events published longer ago than this and not received live (a channel layer that dropped
# them) are read from the outbox by the connection at its next check.
LIVE_CATCHUP_GRACE_SECONDS = float(os.environ.get("LIVE_CATCHUP_GRACE_SECONDS", "2"))
LIVE_TOKEN_SECONDS = int(os.environ.get("LIVE_TOKEN_SECONDS", "60"))

# Error pages shown with DEBUG on (`make run`) hide every setting whose name says it may hold
# a secret. Django's own list misses connection URLs, which carry passwords
# (DATABASE_URL=postgres://user:password@..., REDIS_URL, CELERY_BROKER_URL).
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.reporting.SecretsHiddenReporterFilter"
