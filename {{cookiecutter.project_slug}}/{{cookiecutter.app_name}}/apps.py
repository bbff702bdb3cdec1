from django.apps import AppConfig
from django.db.backends.signals import connection_created


class {{ cookiecutter.app_name.title().replace('_', '') }}Config(AppConfig):
    name = "{{ cookiecutter.app_name }}"

    def ready(self):
        # Registers the system checks that guard the task queue settings.
        from . import checks  # noqa: F401
        from .sqlite import configure_sqlite

        # This app comes first in INSTALLED_APPS, so the receiver is connected before
        # any other app is ready and before the first query of any process: web
        # server, qcluster and its workers, tests, shell.
        connection_created.connect(configure_sqlite, dispatch_uid="configure_sqlite")
