"""Configuration, read from the environment with safe defaults for the demo.

Every setting a deployment changes comes from an environment variable; the README lists them.
Without any, the shop runs on an embedded SQLite database under ``var/`` with mail printed to
the console, which is what ``make demo`` wants.
"""

import os
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = Path(os.environ.get("WARENHAUS_HOME", Path.cwd()))
VAR_DIR = Path(os.environ.get("WARENHAUS_VAR", PROJECT_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)
# The three secrets default to public demo values, which production refuses to start with
# (warenhaus.core.checks): `warenhaus demo` makes its own, the tests set theirs.
SECRET_KEY = (
    os.environ.get("SECRET_KEY") or "demo-only-insecure-key-change-me-in-production-0123456789"
)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",  # its Swagger UI files, served as static files for /api/v1/docs
    "django_tasks",
    "django_tasks_db",
    "warenhaus.core",
    "warenhaus.accounts",
    "warenhaus.catalog",
    "warenhaus.inventory",
    "warenhaus.checkout",
    "warenhaus.orders",
    "warenhaus.notifications",
    "warenhaus.promotions",
    "warenhaus.remediation",
    "warenhaus.deals",
    "warenhaus.web",
    "warenhaus.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "warenhaus.core.middleware.CacheControlMiddleware",
    "warenhaus.core.middleware.ApiGuardMiddleware",
    "warenhaus.deals.limiter.AdmissionLimiterMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "warenhaus.urls"
WSGI_APPLICATION = "warenhaus.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "warenhaus.web.context.shop",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default; PostgreSQL is production. WAL and a generous timeout let the
# demo's server and worker share the SQLite file.
DEFAULT_SQLITE = f"sqlite:///{VAR_DIR / 'warenhaus.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", DEFAULT_SQLITE),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True) if DATABASES[
        "default"
    ]["NAME"] != ":memory:" else None
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get("SQLITE_TEST_NAME") or None
else:
    DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (login and code-guessing limits must be shared by every app process) -------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "warenhaus_cache",
        }
    }

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# The password policy of every account, shoppers and staff (warenhaus.accounts.passwords).
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "warenhaus.accounts.passwords.EmailValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "warenhaus.accounts.passwords.ZxcvbnValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
API_TOKEN_TTL_DAYS = int(os.environ.get("API_TOKEN_TTL_DAYS", "30"))
# Failed logins per window: per e-mail with client address, and per device cookie; per e-mail
# from clients without its device cookie; per client address. Successes do not count.
LOGIN_RATE_LIMIT = int(os.environ.get("LOGIN_RATE_LIMIT", "10"))
LOGIN_RATE_LIMIT_ACCOUNT = int(os.environ.get("LOGIN_RATE_LIMIT_ACCOUNT", "100"))
LOGIN_RATE_LIMIT_ADDRESS = int(os.environ.get("LOGIN_RATE_LIMIT_ADDRESS", "200"))
LOGIN_RATE_WINDOW = int(os.environ.get("LOGIN_RATE_WINDOW", "900"))  # seconds
DEVICE_COOKIE_DAYS = int(os.environ.get("DEVICE_COOKIE_DAYS", "365"))
# Login links by mail: how long one works (keep it at least LOGIN_LINK_WINDOW, so links that
# strangers had sent stay usable for the owner while further requests are refused), and how
# many may be asked for per e-mail and per client address in a window.
LOGIN_LINK_TTL = int(os.environ.get("LOGIN_LINK_TTL", "900"))  # seconds
LOGIN_LINK_WINDOW = int(os.environ.get("LOGIN_LINK_WINDOW", "900"))  # seconds
LOGIN_LINK_LIMIT_EMAIL = int(os.environ.get("LOGIN_LINK_LIMIT_EMAIL", "3"))
LOGIN_LINK_LIMIT_ADDRESS = int(os.environ.get("LOGIN_LINK_LIMIT_ADDRESS", "10"))
# Sign-ups per client address: a short burst and per hour (a person needs half a minute for
# the form; even a carrier NAT rarely brings more than a few new customers a minute).
REGISTRATION_BURST_LIMIT = int(os.environ.get("REGISTRATION_BURST_LIMIT", "5"))
REGISTRATION_BURST_WINDOW = int(os.environ.get("REGISTRATION_BURST_WINDOW", "60"))  # seconds
REGISTRATION_RATE_LIMIT = int(os.environ.get("REGISTRATION_RATE_LIMIT", "30"))
REGISTRATION_RATE_WINDOW = int(os.environ.get("REGISTRATION_RATE_WINDOW", "3600"))  # seconds

# --- Vouchers ------------------------------------------------------------------------------
# The key under which codes are stored (HMAC-SHA256). Changing it makes every stored code
# unknown, so set it once.
VOUCHER_CODE_SECRET = (
    os.environ.get("VOUCHER_CODE_SECRET") or "demo-only-insecure-voucher-code-secret"
)
# The key goodwill codes are derived from (one per customer of a remediation job); its own, so
# that no other key (a leaked SECRET_KEY, say) lets anyone compute them.
GOODWILL_CODE_SECRET = (
    os.environ.get("GOODWILL_CODE_SECRET") or "demo-only-insecure-goodwill-code-secret"
)
VOUCHER_ATTEMPT_LIMIT = int(
    os.environ.get("VOUCHER_ATTEMPT_LIMIT", "10")
)  # codes tried per window per cart, shopper, session
VOUCHER_ATTEMPT_LIMIT_ADDRESS = int(
    os.environ.get("VOUCHER_ATTEMPT_LIMIT_ADDRESS", "30")
)  # unknown codes per client address
VOUCHER_ATTEMPT_WINDOW = int(os.environ.get("VOUCHER_ATTEMPT_WINDOW", "900"))  # seconds
# approval refuses (without an override reason) a discount above this share of the minimum basket
VOUCHER_SAFE_SHARE_OF_MIN_BASKET = Decimal(os.environ.get("VOUCHER_SAFE_SHARE_OF_MIN_BASKET", "50"))
VOUCHER_MAX_CODES_PER_CALL = int(os.environ.get("VOUCHER_MAX_CODES_PER_CALL", "10000"))
VOUCHER_NEW_ACCOUNT_HOURS = int(os.environ.get("VOUCHER_NEW_ACCOUNT_HOURS", "24"))
# Remediation jobs: the largest goodwill voucher one job may give each customer, how long it is
# valid, how many orders one transaction works off, and how long a worker's claim on a job lasts
# without a sign of life (then another worker resumes it).
REMEDIATION_GOODWILL_MAX = Decimal(os.environ.get("REMEDIATION_GOODWILL_MAX", "100.00"))
REMEDIATION_GOODWILL_VALID_DAYS = int(os.environ.get("REMEDIATION_GOODWILL_VALID_DAYS", "365"))
REMEDIATION_CHUNK = int(os.environ.get("REMEDIATION_CHUNK", "500"))
REMEDIATION_LEASE_SECONDS = int(os.environ.get("REMEDIATION_LEASE_SECONDS", "120"))
# Flash deals: where the waiting room keeps its queue ("db", embedded; "redis" for many app
# servers, at REDIS_URL), and how many shoppers a deal lets in per minute unless it says.
WAITING_ROOM_BACKEND = os.environ.get("WAITING_ROOM_BACKEND", "db")
WAITING_ROOM_REDIS_URL = os.environ.get(
    "WAITING_ROOM_REDIS_URL", ""
)  # the Redis of the waiting room; empty: REDIS_URL
WAITING_ROOM_PREFIX = os.environ.get(
    "WAITING_ROOM_PREFIX", "wr"
)  # Redis key prefix (several shops on one Redis)
DEAL_ADMISSIONS_PER_MINUTE = int(os.environ.get("DEAL_ADMISSIONS_PER_MINUTE", "600"))
DEALS_CACHE_SECONDS = float(
    os.environ.get("DEALS_CACHE_SECONDS", "1.0")
)  # how old the deal row and line order joins and polls read may be
# The waiting room's fast lane (warenhaus.deals.fastlane): joins and polls answered in front of
# Django's request cycle by the same view functions (off: every request goes through Django).
DEALS_FAST_LANE = env_bool("DEALS_FAST_LANE", True)
# The admission limiter (warenhaus.deals.limiter): requests of one expensive class (deal queue,
# checkout submit, deal pages) in flight per process (default: one thread fewer than gunicorn's
# WEB_THREADS, so one is always free for the rest; 0 = off), how long one waits for a place, and
# the Retry-After of a refusal (429) plus random jitter.
ADMISSION_MAX_IN_FLIGHT = int(
    os.environ.get(
        "ADMISSION_MAX_IN_FLIGHT", str(max(1, int(os.environ.get("WEB_THREADS", "4") or 4) - 1))
    )
)
ADMISSION_WAIT_MS = int(os.environ.get("ADMISSION_WAIT_MS", "75"))
ADMISSION_MAX_QUEUE_MS = int(
    os.environ.get("ADMISSION_MAX_QUEUE_MS", "2000")
)  # refuse what waited longer for a thread
ADMISSION_RETRY_AFTER = int(os.environ.get("ADMISSION_RETRY_AFTER", "2"))
ADMISSION_RETRY_JITTER = int(os.environ.get("ADMISSION_RETRY_JITTER", "2"))
REMEDIATION_MAX_ATTEMPTS = int(os.environ.get("REMEDIATION_MAX_ATTEMPTS", "5"))
# Seconds to rest between chunks, to throttle a big clean-up at a busy hour (0: full speed).
REMEDIATION_CHUNK_PAUSE = float(os.environ.get("REMEDIATION_CHUNK_PAUSE", "0"))

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "de"
LANGUAGES = [("de", _("German")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Europe/Berlin"
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
# WhiteNoise serves static files from the app processes in production (after `collectstatic`,
# which `warenhaus serve` runs); with WHITENOISE_USE_FINDERS it also serves them straight from
# the apps' folders, so tests and `--dev` need no collectstatic.
WHITENOISE_USE_FINDERS = True
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only deployment collects static files at build time
    pass
WHITENOISE_AUTOREFRESH = DEBUG

# --- Mail -----------------------------------------------------------------------------------
# EMAIL_URL: smtp://user:pass@host:port, smtp+tls://..., or console:// (the demo default).
EMAIL_URL = os.environ.get("EMAIL_URL", "console://")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Warenhaus <shop@warenhaus.example>")


def _email_settings(url: str) -> dict:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    if parsed.scheme in {"console", ""}:
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parsed.scheme == "locmem":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parsed.hostname or "127.0.0.1",
        "EMAIL_PORT": parsed.port or 25,
        "EMAIL_HOST_USER": unquote(parsed.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parsed.password or ""),
        "EMAIL_USE_TLS": parsed.scheme in {"smtp+tls", "submission"},
        "EMAIL_USE_SSL": parsed.scheme in {"smtps", "smtp+ssl"},
        "EMAIL_TIMEOUT": 10,
    }


globals().update(_email_settings(EMAIL_URL))
OUTBOX_MAX_ATTEMPTS = int(os.environ.get("OUTBOX_MAX_ATTEMPTS", "8"))
OUTBOX_BACKOFF_SECONDS = int(os.environ.get("OUTBOX_BACKOFF_SECONDS", "30"))
OUTBOX_BACKOFF_MAX_SECONDS = int(os.environ.get("OUTBOX_BACKOFF_MAX_SECONDS", str(6 * 3600)))
OUTBOX_LEASE_SECONDS = int(
    os.environ.get("OUTBOX_LEASE_SECONDS", "120")
)  # a send that takes longer is presumed dead
OUTBOX_REQUEUE_GRACE_SECONDS = int(os.environ.get("OUTBOX_REQUEUE_GRACE_SECONDS", "60"))
# Bank details printed on invoice orders' confirmations. The default is a sample, not an account.
INVOICE_BANK_ACCOUNT = {
    "holder": os.environ.get("INVOICE_BANK_HOLDER", "Warenhaus GmbH"),
    "iban": os.environ.get("INVOICE_IBAN", "DE89 3704 0044 0532 0130 00"),
    "bic": os.environ.get("INVOICE_BIC", "COBADEFFXXX"),
    "bank": os.environ.get("INVOICE_BANK", "Commerzbank Köln"),
}
INVOICE_PAYMENT_DAYS = int(os.environ.get("INVOICE_PAYMENT_DAYS", "14"))

# --- Background work ------------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "mail"],
    }
}

# --- Shop -----------------------------------------------------------------------------------
# Payment methods offered: "invoice", and "test" (the card simulator, which approves anything:
# only for demos and tests).
PAYMENT_METHODS = [
    m.strip() for m in os.environ.get("PAYMENT_METHODS", "invoice").split(",") if m.strip()
]
# How many proxies (load balancer, TLS terminator) in front of the app append to
# X-Forwarded-For; the client address used for rate limits is the one the outermost added.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
CURRENCY = "EUR"
SHOP_NAME = os.environ.get("SHOP_NAME", "Warenhaus")
MAX_LINE_QUANTITY = int(os.environ.get("MAX_LINE_QUANTITY", "99"))
MAX_CART_LINES = int(os.environ.get("MAX_CART_LINES", "100"))
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(64 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"warenhaus": {"level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": True}},
}
