from django.apps import AppConfig
{%- if cookiecutter.database == "sqlite" %}
from django.db.backends.signals import connection_created
{%- endif %}


class {{ cookiecutter.app_name.title().replace('_', '') }}Config(AppConfig):
    name = "{{ cookiecutter.app_name }}"

    def ready(self):
        from django_q.signals import post_execute

        # Registers the system checks that guard the task queue settings.
        from . import checks  # noqa: F401
        from .results import prune_successes
{%- if cookiecutter.database == "sqlite" %}
        from .sqlite import configure_sqlite

        # This app comes first in INSTALLED_APPS, so the receiver is connected before
        # any other app is ready and before the first query of any process: web
        # server, qcluster and its workers, tests, shell.
        connection_created.connect(configure_sqlite, dispatch_uid="configure_sqlite")
{%- endif %}

        # Sent by the cluster after it saved each result.
        post_execute.connect(prune_successes, dispatch_uid="prune_successes")
