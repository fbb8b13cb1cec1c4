"""DealDesk settings, read from the environment (and ``.env`` when present).

Every variable is listed in README.md and ``.env.example``.
"""

from pathlib import Path

from dealdesk import config
from dealdesk.backends import skip_unused_backends

BASE_DIR = Path(__file__).resolve().parent.parent
config.read_dotenv(str(BASE_DIR / ".env"))

DEBUG = config.env_bool("DEBUG", default=False)

SECRET_KEY = config.env_required_str(
    "SECRET_KEY",
    default=config.DEV_SECRET_KEY if DEBUG else "",
    when="when DEBUG is off",
    make_with=config.MAKE_SECRET_KEY,
)

# Fernet key that encrypts API keys at rest (dealdesk/connections/crypto.py).
DEALDESK_ENCRYPTION_KEY = config.env_fernet_key(
    "DEALDESK_ENCRYPTION_KEY",
    default=config.DEV_ENCRYPTION_KEY if DEBUG else "",
)

ALLOWED_HOSTS = config.env_list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS", default=[])
PORT = config.env_int("PORT", default=8000, minimum=1, maximum=65535)

STORA_API_URL = config.env_http_url("STORA_API_URL", default="https://public-api.stora.co")
STORA_API_KEY = config.env_str("STORA_API_KEY")
NODESTASH_API_URL = config.env_http_url("NODESTASH_API_URL", default="https://api.nodestash.io/v1")
NODESTASH_API_KEY = config.env_str("NODESTASH_API_KEY")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "dealdesk.connections",
    "dealdesk.deals",
    "dealdesk.board",
    "dealdesk.listtools",
    "dealdesk.sync",
    "dealdesk.sandbox",
    "dealdesk.demo",
    "huey.contrib.djhuey",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dealdesk.middleware.SessionLifetimeMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "dealdesk.middleware.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "dealdesk.sync.middleware.ActivityMiddleware",
    "dealdesk.middleware.DesignedNotFoundMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "dealdesk.lockout.AddressLockoutBackend",
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "dealdesk.urls"
WSGI_APPLICATION = "dealdesk.wsgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

DATABASES = {
    "default": config.env_database("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the sync worker share one SQLite file: WAL lets readers run while the
    # worker writes, IMMEDIATE transactions take the write lock up front (no upgrade deadlock),
    # and a busy timeout waits for the lock instead of failing with "database is locked".
    # Connections are kept per thread (below), so each one's own page cache is held to 512 KiB
    # (SQLite's default is 2 MB): 16 threads would otherwise keep 32 MB per worker, while the
    # operating system's file cache serves a re-read page in microseconds.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-512;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
# Each web thread keeps its connection between requests (checked before reuse): opening one,
# with its pragmas and SQLite's schema read, cost about as much as a page's own queries.
DATABASES["default"].setdefault("CONN_MAX_AGE", 600)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
CACHES = {"default": config.env_cache("CACHE_URL", default="locmemcache://dealdesk")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "deals:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = config.env_str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Security -----------------------------------------------------------------------------
# Secure by default whenever DEBUG is off; each can be relaxed for a plain-HTTP loopback run
# (the benchmark does that), never silently.
SECURE_SSL_REDIRECT = config.env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = config.env_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = config.env_int(
    "SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000, maximum=10 * 31536000
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# A session ends 12 hours after signing in, and after DEALDESK_SESSION_IDLE_SECONDS without a
# request (dealdesk/middleware.py).
SESSION_COOKIE_AGE = 12 * 60 * 60
DEALDESK_SESSION_IDLE_SECONDS = config.env_int(
    "DEALDESK_SESSION_IDLE_SECONDS", default=2 * 60 * 60, minimum=60
)
# Error reports hide sensitive variables (the transport's headers) with DEBUG on as well.
DEFAULT_EXCEPTION_REPORTER_FILTER = "dealdesk.logging.AlwaysSafeExceptionReporterFilter"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# django-axes: lock an account+address out after repeated failed logins.
AXES_ENABLED = config.env_bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = config.env_int("AXES_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# And any address, whatever the usernames, after this many failures (dealdesk/lockout.py counts
# axes' failure log).
AXES_ENABLE_ACCESS_FAILURE_LOG = True
DEALDESK_ADDRESS_FAILURE_LIMIT = config.env_int(
    "DEALDESK_ADDRESS_FAILURE_LIMIT", default=20, minimum=1
)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Upstream API behaviour ---------------------------------------------------------------
DEALDESK_HTTP_CONNECT_TIMEOUT = 3.05
DEALDESK_HTTP_READ_TIMEOUT = config.env_int("DEALDESK_HTTP_READ_TIMEOUT", default=10, minimum=1)
DEALDESK_REFERENCE_TTL = config.env_int("DEALDESK_REFERENCE_TTL", default=300)
DEALDESK_PAGE_SIZE = 25
# The client-side rate budget models each vendor's documented limits; only a benchmark with the
# sandbox's own limits switched off turns it off.
DEALDESK_CLIENT_RATE_LIMITS = config.env_bool("DEALDESK_CLIENT_RATE_LIMITS", default=True)

# --- The synced deal store (dealdesk/sync/) -------------------------------------------------
# The share of each vendor quota (per second, per minute, per day) background sync may spend;
# the rest is left for people's writes.
DEALDESK_SYNC_SHARE = config.env_float("DEALDESK_SYNC_SHARE", default=0.5, minimum=0.05, maximum=1)
# How often a connection is polled while someone used DealDesk in the last ACTIVE_WINDOW
# seconds, and how often otherwise.
DEALDESK_SYNC_ACTIVE_INTERVAL = config.env_int(
    "DEALDESK_SYNC_ACTIVE_INTERVAL", default=5, minimum=1
)
DEALDESK_SYNC_IDLE_INTERVAL = config.env_int("DEALDESK_SYNC_IDLE_INTERVAL", default=300, minimum=5)
DEALDESK_SYNC_ACTIVE_WINDOW = 600
# A full walk (finds deals deleted upstream, re-reads everything) at most this often.
DEALDESK_SYNC_FULL_WALK_INTERVAL = config.env_int(
    "DEALDESK_SYNC_FULL_WALK_INTERVAL", default=6 * 3600, minimum=60
)
# Reference data (stages, staff, contacts, companies, sites) is re-read this often.
DEALDESK_SYNC_REFERENCE_INTERVAL = config.env_int(
    "DEALDESK_SYNC_REFERENCE_INTERVAL", default=900, minimum=30
)
# Activities (notes, tasks…) of a vendor that keeps them are polled at most this often (each
# poll is one more call; a note or task added through DealDesk is in the store at once).
DEALDESK_SYNC_ACTIVITY_INTERVAL = config.env_int(
    "DEALDESK_SYNC_ACTIVITY_INTERVAL", default=30, minimum=0
)
# Pages show an alert for a source whose last successful sync is older than this.
DEALDESK_SYNC_LAG_ALERT = config.env_int("DEALDESK_SYNC_LAG_ALERT", default=120, minimum=10)
# With DEBUG on, Django's technical 404 (it lists the URL patterns) instead of the designed one.
DEALDESK_TECHNICAL_404 = config.env_bool("DEALDESK_TECHNICAL_404", default=False)
# Page views start the sync chains themselves (off in the test suite, which syncs explicitly).
DEALDESK_SYNC_AUTOSTART = config.env_bool("DEALDESK_SYNC_AUTOSTART", default=True)
# The address vendors reach DealDesk at, for registering webhooks (e.g. https://deals.example.com).
DEALDESK_PUBLIC_URL = config.env_str("DEALDESK_PUBLIC_URL").rstrip("/")

# huey runs the background sync. Without HUEY_REDIS_URL it keeps its queue in a SQLite file
# next to the database (``make run`` needs no extra server); production points it at Redis.
HUEY_REDIS_URL = config.env_str("HUEY_REDIS_URL")
HUEY = {
    "name": "dealdesk",
    "immediate": False,
    "utc": True,
    "consumer": {"workers": 2, "worker_type": "thread", "periodic": True},
}
if HUEY_REDIS_URL:
    HUEY.update({"huey_class": "huey.RedisHuey", "url": HUEY_REDIS_URL})
else:
    HUEY.update(
        {
            "huey_class": "huey.SqliteHuey",
            "filename": config.env_str("HUEY_SQLITE_PATH", default=str(BASE_DIR / "huey.sqlite3")),
        }
    )

# psycopg and redis are loaded only when the database, cache or queue above uses them
# (``dealdesk/backends.py``: huey would import both anyway, ~19 MB per process).
skip_unused_backends(
    database_engine=DATABASES["default"]["ENGINE"],
    cache_backend=CACHES["default"]["BACKEND"],
    queue_class=str(HUEY["huey_class"]),
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "dealdesk.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": config.env_str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
