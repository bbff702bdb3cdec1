"""`manage.py restore_replica`: restore the database from its Litestream replica when the
database file is missing; nothing when it exists, or when there is no replica yet
(taskqueue/replication.py). compose.yaml and the systemd unit run it before `migrate`."""

import subprocess

from django.core.management.base import BaseCommand, CommandError

from taskqueue import replication


class Command(BaseCommand):
    help = "Restore a missing SQLite database from LITESTREAM_REPLICA_URL."

    def handle(self, *args, **options):
        if not replication.enabled():
            self.stdout.write(replication.OFF)
            return
        path = replication.database_path()
        if path.exists():
            self.stdout.write(f"{path} exists: nothing to restore")
            return
        program, arguments, environment = replication.command(
            "restore", "-if-db-not-exists", "-if-replica-exists", str(path)
        )
        completed = subprocess.run(arguments, env=environment, capture_output=True, text=True)
        if completed.returncode != 0:
            last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            raise CommandError(f"litestream restore failed (exit {completed.returncode}): {last}")
        if path.exists():
            self.stdout.write(f"restored {path} from its replica")
        else:
            self.stdout.write("no replica yet: migrate creates a new database")
