"""`manage.py restore COPY`: put a copy made by `manage.py backup` back in place.

Stop the web server and the cluster first: the command refuses while a cluster is
alive. The copy is checked first, then written into the database through SQLite
(its WAL files included), so an interrupted restore leaves the old database.
"""

import sqlite3
from contextlib import closing
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from taskqueue.health import alive_clusters


class Command(BaseCommand):
    help = "Replace the SQLite database with a copy made by `manage.py backup`."

    def add_arguments(self, parser):
        parser.add_argument("copy", type=Path, help="The copy to restore.")

    def handle(self, *args, copy, **options):
        if not copy.is_file():
            raise CommandError(f"{copy} is not a file.")
        try:
            running = alive_clusters()
        except DatabaseError:  # no tables yet: no cluster runs on this database
            running = []
        if running:
            raise CommandError("a task cluster is running: stop it (and the web server) first.")
        target = Path(connection.settings_dict["NAME"])
        connection.close()
        try:
            with closing(sqlite3.connect(copy)) as source:
                check = source.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise CommandError(f"{copy} failed its integrity check: {check}")
                with closing(sqlite3.connect(target, timeout=20)) as database:
                    source.backup(database)
        except sqlite3.Error as exc:
            raise CommandError(f"could not restore {copy}: {exc}") from exc
        self.stdout.write(f"restored {copy} into {target}")
