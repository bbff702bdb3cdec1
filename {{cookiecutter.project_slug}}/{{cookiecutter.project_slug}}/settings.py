"""
Django settings for {{ cookiecutter.project_name }}.

Configuration that differs between machines comes from the environment, or from
a `.env` file beside manage.py (see README.md for every variable).

https://docs.djangoproject.com/en/5.2/ref/settings/
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

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "{{ cookiecutter.app_name }}",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
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
# One SQLite file shared by the web server and the task cluster. The
# {{ cookiecutter.app_name }}.sqlite module turns on WAL (readers never wait for the writer),
# busy_timeout and synchronous=NORMAL on every new connection.
#
# "transaction_mode": "IMMEDIATE" makes every transaction.atomic() take the write
# lock when it starts. With the default DEFERRED mode, a transaction that reads and
# then writes cannot wait for the lock: SQLite fails it at once with "database is
# locked", whatever busy_timeout says. Measured with 4 processes enqueuing inside
# transaction.atomic() while a cluster ran: WAL + busy_timeout alone (and workers=1)
# lost 475 of 600 enqueues; with IMMEDIATE none were lost, and 4 workers drained the
# queue 2.2x faster. "timeout" (seconds) is how long a connection waits for the lock.
# https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-transaction-behavior

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env.str("DJANGO_SQLITE_PATH", default=BASE_DIR / "db.sqlite3"),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        # Keep connections open between requests and broker polls: a new connection
        # costs an open and the PRAGMAs above (enqueue p50 measured 8 ms without, 1 ms with).
        "CONN_MAX_AGE": 600,
    }
}
{%- else %}
# PostgreSQL, from DATABASE_URL (postgres://USER:PASSWORD@HOST:PORT/NAME).
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://localhost/{{ cookiecutter.project_slug }}"),
}
# Keep connections open between requests and broker polls, checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = 600
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
{%- endif %}
{%- if cookiecutter.broker == "orm" %}


# Cache
# ------------------------------------------------------------------------------
# With the ORM broker, django-q2 keeps the cluster's stats in a Django cache. A
# local-memory cache lives inside one process, so `qinfo`, `qmonitor` and `qhealth`
# would never see a cluster running in another process: the stats go to a database
# cache instead (its table is created by a migration of the {{ cookiecutter.app_name }} app).

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
# Each value can be overridden from the environment (DJANGO_Q_WORKERS, ...), for
# example to give one machine more workers without a code change.
#
{%- if cookiecutter.broker == "orm" %}
# Failure policy: a failed task stays in the queue and is delivered again after
# `retry` seconds, up to `max_attempts` attempts in all. This needs
# ack_failures=False: with ack_failures=True django-q2 acknowledges a failed task
# at once, so it runs a single time and max_attempts never applies.
#
# UPGRADE PATH to Redis{% if cookiecutter.database == "sqlite" %} and PostgreSQL{% endif %} (when one machine is no longer enough):
# 1. Let the cluster finish what is queued first: the tasks waiting in the ORM
#    queue (admin "Queued tasks", django_q_ormq table) are not moved to Redis.
#    Stop the web processes, wait until `python manage.py qinfo` shows an empty
#    queue, then stop the cluster.
# 2. pip install redis hiredis, then in Q_CLUSTER *remove* "orm" and add
#        "redis": "redis://127.0.0.1:6379/0",
#    ("orm" wins over "redis" when both are set, so leaving it keeps the ORM broker).
# 3. Redis has no delivery receipts: "retry" and "max_attempts" stop applying, a
#    task that dies with its worker is not delivered again, and a failed task runs
#    once. The cluster stats live in Redis, so the "django_q" cache and "cache"
#    below can go.
{%- if cookiecutter.database == "sqlite" %}
# 4. Move the data to PostgreSQL (pip install "psycopg[binary]", ENGINE
#    django.db.backends.postgresql, drop the SQLite "OPTIONS") and remove the
#    {{ cookiecutter.app_name }}.sqlite signal: PostgreSQL handles concurrent writers itself.
# 5. Raise "workers" towards the number of CPU cores.
{%- else %}
# 4. Raise "workers" towards the number of CPU cores.
{%- endif %}
# https://django-q2.readthedocs.io/en/master/brokers.html
{%- else %}
# Broker: Redis, from REDIS_URL. What that changes compared with the ORM broker:
# - Redis has no delivery receipts: a task is gone from the queue once a cluster
#   takes it. A task that dies with its worker is not delivered again, and a failed
#   task runs once: "retry" and "max_attempts" do not apply (retry stays above
#   timeout only so that django-q2 does not warn).
# - There is no "Queued tasks" admin: `python manage.py qinfo` shows the queue size.
# - The cluster stats live in Redis, so `qinfo`, `qmonitor` and `qhealth` see every
#   cluster that uses the same Redis database and cluster name.
# https://django-q2.readthedocs.io/en/master/brokers.html#redis
{%- endif %}

Q_CLUSTER = {
    "name": "{{ cookiecutter.project_slug }}",
{%- if cookiecutter.broker == "orm" %}
    # The broker is the default database: no other service to run.
    "orm": "default",
{%- else %}
    # django-q2 accepts a redis:// URL.
    "redis": env.str("REDIS_URL", default="redis://127.0.0.1:6379/0"),
{%- endif %}
    "workers": env.int("DJANGO_Q_WORKERS", default={{ cookiecutter.q_workers }}),
    # Seconds a task may run before its worker is killed.
    "timeout": env.int("DJANGO_Q_TIMEOUT", default={{ cookiecutter.q_timeout }}),
    # Seconds before an unacknowledged task is delivered again; must exceed timeout.
    "retry": env.int("DJANGO_Q_RETRY", default={{ cookiecutter.q_retry }}),
    "queue_limit": env.int("DJANGO_Q_QUEUE_LIMIT", default={{ cookiecutter.q_queue_limit }}),
    # 0: django-q2 does not prune successes itself; TASK_SUCCESS_LIMIT (below) does,
    # outside the write lock ({{ cookiecutter.app_name }}/results.py says why).
    "save_limit": 0,
    # Tasks a worker runs before it is replaced (releases leaked memory).
    "recycle": env.int("DJANGO_Q_RECYCLE", default={{ cookiecutter.q_recycle }}),
{%- if cookiecutter.broker == "orm" %}
    "ack_failures": False,
    "max_attempts": env.int("DJANGO_Q_MAX_ATTEMPTS", default={{ cookiecutter.q_max_attempts }}),
    "cache": "django_q",
{%- endif %}
    "label": "Background tasks",
}

# Successful tasks kept; older ones are deleted after each task. Failures are kept.
TASK_SUCCESS_LIMIT = env.int("DJANGO_Q_SAVE_LIMIT", default={{ cookiecutter.q_save_limit }})


# Logging
# ------------------------------------------------------------------------------
# django-q2 logs to "django-q" (a hyphen: "django_q" is the package, not the logger).

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "verbose": {
            "format": "{asctime} [{name}] {levelname} {message}",
            "style": "{",
        },
    },
    "handlers": {
        "django_q_console": {
            "class": "logging.StreamHandler",
            "formatter": "verbose",
        },
    },
    "loggers": {
        "django-q": {
            "handlers": ["django_q_console"],
            "level": "DEBUG" if DEBUG else "INFO",
            "propagate": False,
        },
    },
}


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
STATIC_ROOT = BASE_DIR / "staticfiles"


# Security (production)
# ------------------------------------------------------------------------------
# With DEBUG off, `python manage.py check --deploy` passes. Behind a proxy that
# terminates TLS, it must send X-Forwarded-Proto.

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Start small: browsers remember HSTS for this many seconds.
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
