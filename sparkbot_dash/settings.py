"""Settings for sparkbot_dash, all read from the environment (see .env.example)."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import (
    env_bool, env_database, env_float, env_int, env_list, env_log_level, env_pair, env_str, env_str_or_default,
    env_seconds_list, env_time_zone, env_url,
)
from .local_secrets import AUDIT_CHAIN_KEY_FILE, SECRET_KEY_FILE, var_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str_or_default("SPARKBOT_DASH_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)
# From the environment, else from the var dir, where `make setup` (or a DEBUG start) writes one once.
# Production never makes one up: each container would sign with a different key.
SECRET_KEY = env_str("SECRET_KEY") or var_secret(VAR_DIR / SECRET_KEY_FILE, create=DEBUG)
if not SECRET_KEY:
    raise ImproperlyConfigured(
        f"SECRET_KEY must be set when DEBUG is off, in the environment or in {VAR_DIR / SECRET_KEY_FILE} "
        "(which `make setup` writes)."
    )
# The audit chain's HMAC key: kept out of the database, so that whoever can rewrite records by SQL cannot
# forge their chain. From the environment (docker-compose requires it: every process must share it), else
# written once under the var dir.
AUDIT_CHAIN_KEY = env_str("AUDIT_CHAIN_KEY") or var_secret(VAR_DIR / AUDIT_CHAIN_KEY_FILE, create=True)
if len(AUDIT_CHAIN_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_CHAIN_KEY must be at least 32 characters long (e.g. `openssl rand -hex 32`).")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "sparkbot_dash.apps.DashboardAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "pgtrigger",
    "ninja",  # the API (queues/api/): its Swagger UI is served from its own static files, no CDN
    "queues",
]

MIDDLEWARE = [
    "sparkbot_dash.middleware.ProxyHeaderHintMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sparkbot_dash.middleware.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "queues.api.middleware.ApiProblemMiddleware",  # innermost: the others still add their headers
]

ROOT_URLCONF = "sparkbot_dash.urls"
WSGI_APPLICATION = "sparkbot_dash.wsgi.application"
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

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # A file, not memory, so that a Celery worker started by the tests sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "queues:reroute"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# Security headers and cookies. With DEBUG off, HTTPS only: cookies never go over plain HTTP, plain HTTP
# is redirected, and browsers are told (HSTS) to use HTTPS for a year; each can be turned off. Behind an
# HTTPS proxy (docker-compose's Caddy) also set SECURE_PROXY_SSL_HEADER; if it is missing, the
# ProxyHeaderHintMiddleware says so. See docs/SECURITY.md.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# Preloading commits the whole domain to HTTPS in browsers for months, so it is asked for, never a default;
# until then Django's reminder about it (security.W021) is silenced.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_PROXY_SSL_HEADER = env_pair("SECURE_PROXY_SSL_HEADER")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [], empty_ok=True)
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

# Sign-in: repeated failures for one username from one address, or for any usernames from one
# address (password spraying), are locked out for a while, and every attempt is recorded (django-axes;
# the address limit and the lockout page are in queues/sign_in.py).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "queues.permissions.OneQueryModelBackend"]
SIGN_IN_FAILURE_LIMIT = env_int("SIGN_IN_FAILURE_LIMIT", 5, minimum=1)
SIGN_IN_ADDRESS_FAILURE_LIMIT = env_int("SIGN_IN_ADDRESS_FAILURE_LIMIT", 20, minimum=1)
if SIGN_IN_ADDRESS_FAILURE_LIMIT < SIGN_IN_FAILURE_LIMIT:
    raise ImproperlyConfigured("SIGN_IN_ADDRESS_FAILURE_LIMIT must be at least SIGN_IN_FAILURE_LIMIT "
                               f"({SIGN_IN_FAILURE_LIMIT}): it counts the failures of every username from one address.")
# Behind a proxy every request comes from the proxy's address: trust the address it puts last in
# X-Forwarded-For only when a proxy that sets that header stands in front (docker-compose's Caddy).
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
AXES_FAILURE_LIMIT = "queues.sign_in.failure_limit"
AXES_CLIENT_IP_CALLABLE = "queues.sign_in.client_address"
AXES_LOCKOUT_CALLABLE = "queues.sign_in.lockout_response"
AXES_COOLOFF_TIME = env_float("SIGN_IN_LOCKOUT_MINUTES", 15.0, minimum=0.1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # the lasting record; attempts are reset on success

# Redis when REDIS_URL is set; otherwise Celery's filesystem broker and a local cache.
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    # django-redis: its cache.lock() is the device list's lock (an owner token; only the owner releases).
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 5, "SOCKET_TIMEOUT": 5}}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    BROKER_DIR = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "sparkbot_dash.broker:AtomicFilesystemTransport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # one logging setup (LOGGING below) for web and worker
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# SparkBot: the sandbox on 127.0.0.1 unless told otherwise.
SPARKBOT_API_URL = env_url("SPARKBOT_API_URL", "http://127.0.0.1:8900/v1", schemes=("http", "https")).rstrip("/")
SPARKBOT_API_KEY = env_str("SPARKBOT_API_KEY", "sandbox-key-0123456789abcdefghijklmnop")
if not 30 <= len(SPARKBOT_API_KEY) <= 200:
    raise ImproperlyConfigured("SPARKBOT_API_KEY must be 30 to 200 characters long.")
SPARKBOT_TIMEOUT = env_float("SPARKBOT_TIMEOUT", 10.0, minimum=0.1)
SPARKBOT_DEVICE_CACHE_SECONDS = env_int("SPARKBOT_DEVICE_CACHE_SECONDS", 60, minimum=1)
# A failed walk of the device list is answered from the cache for this long (so waiting pages learn it);
# with no list at all, a page waits this long for the walk before saying it is still loading.
SPARKBOT_DEVICE_ERROR_CACHE_SECONDS = env_int("SPARKBOT_DEVICE_ERROR_CACHE_SECONDS", 5, minimum=1)
SPARKBOT_DEVICE_WAIT_SECONDS = env_float("SPARKBOT_DEVICE_WAIT_SECONDS", 10.0, minimum=0.1)
SPARKBOT_MAX_ATTEMPTS = env_int("SPARKBOT_MAX_ATTEMPTS", 5, minimum=1)
SPARKBOT_RETRY_BASE_SECONDS = env_float("SPARKBOT_RETRY_BASE_SECONDS", 2.0)
SPARKBOT_RETRY_MAX_SECONDS = env_float("SPARKBOT_RETRY_MAX_SECONDS", 60.0)

# The sweeper (Celery beat) finds lost work: reroutes still queued after
# REROUTE_REQUEUE_AFTER_SECONDS go back to the task queue; reroutes running with no sign
# of life for REROUTE_STUCK_AFTER_SECONDS (their worker died) are recovered.
REROUTE_SWEEP_SECONDS = env_float("REROUTE_SWEEP_SECONDS", 15.0, minimum=1)
REROUTE_REQUEUE_AFTER_SECONDS = env_int("REROUTE_REQUEUE_AFTER_SECONDS", 30, minimum=1)
REROUTE_STUCK_AFTER_SECONDS = env_int("REROUTE_STUCK_AFTER_SECONDS", 300, minimum=10)
# Days an ended reroute stays in the database before `archive_reroutes` moves it to an archive file (0 = forever).
REROUTE_RETENTION_DAYS = env_int("REROUTE_RETENTION_DAYS", 0)
# A live attempt must never look stuck. It makes at most five SparkBot calls (read the queue,
# pause it for a handover, route it, read it again, set it back), each cut off by the client
# at SPARKBOT_TIMEOUT whatever SparkBot does, and writes a sign of life after each; between
# two attempts it waits at most SPARKBOT_RETRY_MAX_SECONDS.
SPARKBOT_CALLS_PER_ATTEMPT = 5
_LONGEST_SILENCE = SPARKBOT_CALLS_PER_ATTEMPT * SPARKBOT_TIMEOUT + SPARKBOT_RETRY_MAX_SECONDS + 5
if REROUTE_STUCK_AFTER_SECONDS < _LONGEST_SILENCE:
    raise ImproperlyConfigured(
        f"REROUTE_STUCK_AFTER_SECONDS must be at least {_LONGEST_SILENCE:g} (5 calls x SPARKBOT_TIMEOUT + "
        "SPARKBOT_RETRY_MAX_SECONDS + 5), or a live reroute could be taken for a dead one."
    )
# Shift handovers: how many moves of one run go at once, and how often scheduled plans
# are checked (and running handovers nudged).
HANDOVER_CONCURRENCY = env_int("HANDOVER_CONCURRENCY", 5, minimum=1)
HANDOVER_TICK_SECONDS = env_float("HANDOVER_TICK_SECONDS", 10.0, minimum=1)
# The most moves one handover plan may hold (its editor and its CSV import stop there).
HANDOVER_PLAN_MAX_PAIRS = env_int("HANDOVER_PLAN_MAX_PAIRS", 1000, minimum=1)
# The route page's preview warns when the target already holds at least this many queued messages.
REROUTE_WARN_TARGET_MESSAGES = env_int("REROUTE_WARN_TARGET_MESSAGES", 100, minimum=1)
# A plan's editor posts two fields per move, and "move every chosen number" one per chosen number.
DATA_UPLOAD_MAX_NUMBER_FIELDS = max(1000, 4 * HANDOVER_PLAN_MAX_PAIRS + 100)
# The fleet monitor: a cycle every MONITOR_CYCLE_SECONDS reads the device list every
# MONITOR_DEVICES_SECONDS and queues within MONITOR_CALLS_PER_MINUTE SparkBot calls (over any
# minute, device list pages included); a snapshot of each number is kept when it changed, or at
# least every MONITOR_HEARTBEAT_MINUTES, for MONITOR_RETENTION_DAYS. On 429 or with SparkBot down
# the monitor pauses (Retry-After, or a growing wait up to MONITOR_BACKOFF_MAX_SECONDS).
MONITOR_CYCLE_SECONDS = env_float("MONITOR_CYCLE_SECONDS", 10.0, minimum=1)
MONITOR_DEVICES_SECONDS = env_float("MONITOR_DEVICES_SECONDS", 30.0, minimum=1)
MONITOR_CALLS_PER_MINUTE = env_int("MONITOR_CALLS_PER_MINUTE", 120, minimum=1)
MONITOR_HEARTBEAT_MINUTES = env_float("MONITOR_HEARTBEAT_MINUTES", 15.0, minimum=0.01)
MONITOR_RETENTION_DAYS = env_int("MONITOR_RETENTION_DAYS", 30, minimum=1)
MONITOR_BACKOFF_MAX_SECONDS = env_float("MONITOR_BACKOFF_MAX_SECONDS", 300.0, minimum=1)
MONITOR_PRUNE_SECONDS = 3600.0
# Failover rules are evaluated after every monitor cycle, one evaluation at a time (this lease
# bounds one that died). SparkBot may call POST /hooks/sparkbot/<SPARKBOT_WEBHOOK_SECRET> when a
# number's session changes (empty: the endpoint is off); at most SPARKBOT_WEBHOOK_PER_MINUTE calls
# a minute are acted on.
RULES_EVALUATION_LEASE_SECONDS = env_float("RULES_EVALUATION_LEASE_SECONDS", 30.0, minimum=1)
# How long a rule's "minute" lasts: 60; tests shorten it to see rules wait, fire and cool down in seconds.
RULES_MINUTE_SECONDS = env_float("RULES_MINUTE_SECONDS", 60.0, minimum=0.01)
SPARKBOT_WEBHOOK_SECRET = env_str("SPARKBOT_WEBHOOK_SECRET", "")
if SPARKBOT_WEBHOOK_SECRET and len(SPARKBOT_WEBHOOK_SECRET) < 24:
    raise ImproperlyConfigured("SPARKBOT_WEBHOOK_SECRET must be at least 24 characters long (or empty: off).")
SPARKBOT_WEBHOOK_PER_MINUTE = env_int("SPARKBOT_WEBHOOK_PER_MINUTE", 60, minimum=1)
# The API (/api/v1/): calls per personal token per minute (429 with Retry-After beyond).
API_TOKEN_REQUESTS_PER_MINUTE = env_int("API_TOKEN_REQUESTS_PER_MINUTE", 300, minimum=1)
# Notifications: webhooks (signed as Standard Webhooks do) and emails about what happened, sent by one
# worker process at a time (NOTIFY_CONCURRENCY requests at once), each retried after NOTIFY_RETRY_DELAYS
# seconds in turn, never past NOTIFY_GIVE_UP_HOURS after the event.
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
NOTIFY_TIMEOUT_SECONDS = env_float("NOTIFY_TIMEOUT_SECONDS", 5.0, minimum=0.1)
NOTIFY_CONCURRENCY = env_int("NOTIFY_CONCURRENCY", 8, minimum=1)
NOTIFY_TICK_SECONDS = env_float("NOTIFY_TICK_SECONDS", 10.0, minimum=0.1)
NOTIFY_GIVE_UP_HOURS = env_float("NOTIFY_GIVE_UP_HOURS", 24.0, minimum=0.001)


NOTIFY_RETRY_DELAYS = env_seconds_list("NOTIFY_RETRY_DELAYS", "5,300,1800,7200,18000,36000")
# Email: Django's mail settings. Without EMAIL_HOST, emails are written to the log (console backend).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str_or_default("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                                   else "django.core.mail.backends.console.EmailBackend")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_FILE_PATH = env_str_or_default("EMAIL_FILE_PATH", str(VAR_DIR / "emails"))  # for the file backend
DEFAULT_FROM_EMAIL = env_str_or_default("DEFAULT_FROM_EMAIL", "SparkBot queue router <router@localhost>")
# Each periodic task expires after one period: a worker that was down does not come back to a
# backlog of sweeps and ticks (the next one is on its way anyway).
CELERY_BEAT_SCHEDULE = {
    "sweep-lost-reroutes": {"task": "queues.tasks.reroutes_sweep", "schedule": REROUTE_SWEEP_SECONDS,
                            "options": {"expires": REROUTE_SWEEP_SECONDS}},
    "handovers-tick": {"task": "queues.tasks.handovers_tick", "schedule": HANDOVER_TICK_SECONDS,
                       "options": {"expires": HANDOVER_TICK_SECONDS}},
    "monitor-cycle": {"task": "queues.tasks.monitor_cycle", "schedule": MONITOR_CYCLE_SECONDS,
                      "options": {"expires": MONITOR_CYCLE_SECONDS}},
    "monitor-prune": {"task": "queues.tasks.monitor_prune", "schedule": MONITOR_PRUNE_SECONDS,
                      "options": {"expires": MONITOR_PRUNE_SECONDS}},
    "notifications-send": {"task": "queues.tasks.notifications_send", "schedule": NOTIFY_TICK_SECONDS,
                           "options": {"expires": NOTIFY_TICK_SECONDS}},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"redact_secrets": {"()": "sparkbot_dash.log_filters.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env_log_level("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
