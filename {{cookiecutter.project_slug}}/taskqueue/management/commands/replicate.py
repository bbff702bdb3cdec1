"""`manage.py replicate`: Litestream's continuous replication of the database, in the
foreground, for systemd or compose (taskqueue/replication.py)."""

import os

from django.core.management.base import BaseCommand

from taskqueue import replication


class Command(BaseCommand):
    help = "Replicate the SQLite database to LITESTREAM_REPLICA_URL with Litestream."

    def handle(self, *args, **options):
        if not replication.enabled():
            self.stdout.write(replication.OFF)
            return
        program, arguments, environment = replication.command("replicate")
        self.stdout.write(f"replicating {replication.database_path()} with Litestream")
        self.stdout.flush()
        # Litestream takes this process's place: a stop signal reaches it directly.
        os.execve(program, arguments, environment)
