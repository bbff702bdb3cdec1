"""`manage.py backup`: an online copy of the SQLite database, taken while it is in use.

SQLite's backup API copies a consistent snapshot while the web server and the cluster
keep writing. The copy is checked (PRAGMA integrity_check) under a temporary name,
then renamed: a copy in BACKUP_DIR is always whole. Only the newest BACKUP_KEEP
copies are kept. docs/operations.md describes backing up and restoring.
"""

import sqlite3
from contextlib import closing
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

# Pages copied per step of the backup API; between steps the database is free for
# the other processes' writes.
PAGES_PER_STEP = 1024
PREFIX = "db-"
SUFFIX = ".sqlite3"


class Command(BaseCommand):
    help = "Copy the live SQLite database into BACKUP_DIR, check the copy, keep the newest."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, help="Folder of the copies (BACKUP_DIR).")
        parser.add_argument("--keep", type=int, help="Copies kept, newest first (BACKUP_KEEP).")

    def handle(self, *args, dir=None, keep=None, **options):
        backup_dir = Path(dir or settings.BACKUP_DIR)
        keep = settings.BACKUP_KEEP if keep is None else keep
        if keep < 1:
            raise CommandError(f"--keep must be at least 1, not {keep}.")
        backup_dir.mkdir(parents=True, exist_ok=True)
        target = backup_dir / f"{PREFIX}{timezone.now():%Y%m%d-%H%M%S-%f}{SUFFIX}"
        copy_database(Path(connection.settings_dict["NAME"]), target)
        removed = prune(backup_dir, keep)
        self.stdout.write(f"{target} ({target.stat().st_size} bytes, integrity ok)")
        for path in removed:
            self.stdout.write(f"removed {path}")


def copy_database(source, target):
    """Copy the database at source into target, checked, or raise CommandError."""
    partial = target.with_name(target.name + ".part")
    try:
        with closing(sqlite3.connect(source, timeout=20)) as live:
            with closing(sqlite3.connect(partial)) as copy:
                live.backup(copy, pages=PAGES_PER_STEP)
                check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise CommandError(f"the copy of {source} failed its integrity check: {check}")
        partial.rename(target)
    except sqlite3.Error as exc:
        raise CommandError(f"could not back {source} up: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def prune(backup_dir, keep):
    """Delete all but the newest `keep` copies; return the deleted paths."""
    copies = sorted(backup_dir.glob(f"{PREFIX}*{SUFFIX}"), reverse=True)
    for path in copies[keep:]:
        path.unlink()
    return copies[keep:]
