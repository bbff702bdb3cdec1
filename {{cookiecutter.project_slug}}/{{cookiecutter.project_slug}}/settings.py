"""
Django settings for {{ cookiecutter.project_name }}.

Configuration that differs between machines comes from the environment, or from
a `.env` file beside manage.py (docs/settings.md lists every variable).

https://docs.djangoproject.com/en/{{ cookiecutter.django_version }}/ref/settings/
https://django-q2.readthedocs.io/en/master/configure.html
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Real environment variables win over the file, so a deployment can override it.
environ.Env.read_env(BASE_DIR / ".env")


# Core
# ------------------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set and DJANGO_DEBUG is off: set DJANGO_SECRET_KEY "
            "in the environment or in .env (a long random string), or set DJANGO_DEBUG=True "
            "for local development."
        )
    # Only ever used with DEBUG on; `check --deploy` flags it if it reaches production.
    SECRET_KEY = "django-insecure-local-development-only"

# Keys of before a rotation: still accepted for sessions and for queued tasks.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Who is mailed when a task fails for good (taskqueue/alerts.py), and how: an email
# URL such as smtp+tls://user:password@smtp.example.com:587 (docs/settings.md).
default_email_url = "consolemail://" if DEBUG else "smtp://localhost:25"
{%- if cookiecutter.django_version == "5.2" %}
ADMINS = [("", email) for email in env.list("DJANGO_ADMINS", default=[])]
vars().update(env.email_url("DJANGO_EMAIL_URL", default=default_email_url))
{%- else %}
ADMINS = env.list("DJANGO_ADMINS", default=[])
email = env.email_url("DJANGO_EMAIL_URL", default=default_email_url)
MAILERS = {"default": {"BACKEND": email["EMAIL_BACKEND"]}}
if email["EMAIL_HOST"]:  # an SMTP server
    MAILERS["default"]["OPTIONS"] = {
        "host": email["EMAIL_HOST"],
        "port": email["EMAIL_PORT"],
        "username": email["EMAIL_HOST_USER"],
        "password": email["EMAIL_HOST_PASSWORD"],
        "use_tls": email.get("EMAIL_USE_TLS", False),
        "use_ssl": email.get("EMAIL_USE_SSL", False),
    }
{%- endif %}
SERVER_EMAIL = env.str("DJANGO_SERVER_EMAIL", default="root@localhost")

INSTALLED_APPS = [
    # The task queue: the template's app (README.md), first so that its qcluster wins.
    "taskqueue",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
{%- if cookiecutter.django_version == "5.2" %}
    # Django's standard tasks API, backported (django.tasks from Django 6.0 on).
    "django_tasks",
{%- endif %}
    "{{ cookiecutter.app_name }}",  # your app: tasks.py, schedules.py, models, views
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "{{ cookiecutter.project_slug }}.urls"

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

WSGI_APPLICATION = "{{ cookiecutter.project_slug }}.wsgi.application"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# Database
# ------------------------------------------------------------------------------
{%- if cookiecutter.database == "sqlite" %}
# One file for the web server and the cluster, tuned by taskqueue/sqlite.py (docs/sqlite.md).

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env.str("DJANGO_SQLITE_PATH", default=BASE_DIR / "db.sqlite3"),
        "OPTIONS": {
            # Every transaction.atomic() takes the write lock when it begins.
            "transaction_mode": "IMMEDIATE",
            # Seconds to wait for the write lock (also SQLite's busy_timeout).
            "timeout": 20,
        },
        # Reuse connections between requests and broker polls.
        "CONN_MAX_AGE": 600,
    }
}
{%- else %}
# PostgreSQL, from DATABASE_URL (postgres://USER:PASSWORD@HOST:PORT/NAME): see
# docs/postgresql.md.

DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default="postgres://localhost/{{ cookiecutter.project_slug }}",
    ),
}
# Reuse connections between requests and broker polls, checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = 600
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A connection lost mid-transaction (a machine off the network) frees its locks after a
# minute, not hours later; one whose server stops answering fails after 30 s.
_options = DATABASES["default"].setdefault("OPTIONS", {})
_options["options"] = f"{_options.get('options', '')} -c idle_in_transaction_session_timeout=60s"
_options.update(keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
_options.setdefault("tcp_user_timeout", 30000)  # milliseconds
{%- endif %}
{%- if cookiecutter.broker == "orm" %}


# Cache
# ------------------------------------------------------------------------------
# django-q2 keeps the cluster's stats in the "django_q" cache: a database cache, so that
# qinfo, qmonitor and qhealth see a cluster running in another process.

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    },
    "django_q": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "django_q_cache",
    },
}
{%- endif %}


# Background tasks (django-q2)
# ------------------------------------------------------------------------------
# docs/tasks.md describes each value and the DJANGO_Q_* variables that override it;
# docs/broker-{{ cookiecutter.broker }}.md what the broker guarantees.

Q_CLUSTER = {
    "name": "{{ cookiecutter.project_slug }}",
{%- if cookiecutter.broker == "orm" %}
    "orm": "default",
    # The ORM broker that counts each delivery of a task as an attempt (docs/broker-orm.md).
    "broker_class": "{{ 'taskqueue.brokers.sqlite.SqliteBroker' if cookiecutter.database == 'sqlite' else 'taskqueue.brokers.postgresql.PostgresBroker' }}",
{%- else %}
    "redis": env.str("REDIS_URL", default="redis://127.0.0.1:6379/0"),
{%- endif %}
    "workers": env.int("DJANGO_Q_WORKERS", default={{ cookiecutter.q_workers }}),
    "timeout": env.int("DJANGO_Q_TIMEOUT", default={{ cookiecutter.q_timeout }}),
    "retry": env.int("DJANGO_Q_RETRY", default={{ cookiecutter.q_retry }}),
    "queue_limit": env.int("DJANGO_Q_QUEUE_LIMIT", default={{ cookiecutter.q_queue_limit }}),
    # TASK_SUCCESS_LIMIT prunes successes instead (taskqueue/results.py).
    "save_limit": 0,
    "recycle": env.int("DJANGO_Q_RECYCLE", default={{ cookiecutter.q_recycle }}),
    # KiB: a worker past it is replaced once its task ends (docs/operations.md).
    "max_rss": env.int("DJANGO_Q_MAX_RSS", default={{ cookiecutter.q_max_rss }}),
    # Keep failed tasks for their retries: max_attempts in all, or their policy's.
    "ack_failures": False,
    "max_attempts": env.int("DJANGO_Q_MAX_ATTEMPTS", default={{ cookiecutter.q_max_attempts }}),
{%- if cookiecutter.broker == "orm" %}
    "cache": "django_q",
{%- else %}
    # The Redis broker that delivers retries once they fall due.
    "broker_class": "taskqueue.brokers.redis.RedisBroker",
{%- endif %}
    "label": "Background tasks",
}

# Seconds before a failed task's first retry, doubled for each next one (docs/tasks.md).
TASK_RETRY_DELAY = env.int("DJANGO_TASK_RETRY_DELAY", default={{ cookiecutter.task_retry_delay }})

# Successful tasks kept in the database; failures are always kept.
TASK_SUCCESS_LIMIT = env.int("DJANGO_TASK_SUCCESS_LIMIT", default={{ cookiecutter.task_success_limit }})

# Django's standard tasks API (@task, .enqueue()) runs on this cluster: docs/tasks.md.
TASKS = {"default": {"BACKEND": "taskqueue.backend.DjangoQBackend"}}


# Logging and monitoring
# ------------------------------------------------------------------------------
# django-q2 logs to "django-q" (a hyphen): its warnings everywhere, and each task, at
# TASK_LOG_LEVEL, in `manage.py qcluster`.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "verbose": {"format": "{asctime} [{name}] {levelname} {message}", "style": "{"},
    },
    "handlers": {
        "django_q_console": {"class": "logging.StreamHandler", "formatter": "verbose"},
    },
    "loggers": {
        "django-q": {"handlers": ["django_q_console"], "level": "WARNING", "propagate": False},
    },
}
TASK_LOG_LEVEL = "DEBUG" if DEBUG else "INFO"

# Monitoring, off until set (docs/operations.md): /metrics for a bearer token (the
# clusters count results in METRICS_DIR), and error reports to Sentry.
METRICS_TOKEN = env.str("DJANGO_METRICS_TOKEN", default="")
METRICS_DIR = env.path("DJANGO_METRICS_DIR", default=BASE_DIR / "var" / "metrics")
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_SEND_TASK_ARGUMENTS = env.bool("SENTRY_SEND_TASK_ARGUMENTS", default=False)


# Passwords
# ------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


# Internationalization and static files
# ------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
{%- if cookiecutter.database == "sqlite" %}

# Online copies of the database by `manage.py backup`, the newest BACKUP_KEEP kept.
BACKUP_DIR = env.path("DJANGO_BACKUP_DIR", default=BASE_DIR / "backups")
BACKUP_KEEP = env.int("DJANGO_BACKUP_KEEP", default=7)
# Continuous replication with Litestream, to a directory or an S3 URL (docs/operations.md).
LITESTREAM_REPLICA_URL = env.str("LITESTREAM_REPLICA_URL", default="")
{%- endif %}


# Production (DEBUG off)
# ------------------------------------------------------------------------------
# `check --deploy` passes; a proxy that terminates TLS must send X-Forwarded-Proto.

if not DEBUG:
    # gunicorn serves the app, WhiteNoise the files collectstatic wrote, compressed and
    # under hashed names cached for ever (docs/operations.md).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Health checks call /health/ over plain HTTP, from inside the server or container.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Start small: browsers remember HSTS for this many seconds.
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
