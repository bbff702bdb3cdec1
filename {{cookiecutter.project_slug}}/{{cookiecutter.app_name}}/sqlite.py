"""SQLite settings applied to every new database connection."""


def configure_sqlite(sender, connection, **kwargs):
    """Receiver for connection_created: tune SQLite for a web server plus a task cluster.

    - journal_mode=WAL: readers no longer wait for the writer (and the writer does not
      wait for readers). It is stored in the database file; an in-memory database
      keeps its own mode.
    - busy_timeout: how long a connection waits for another one's write lock before
      "database is locked". Taken from the "timeout" OPTION so the two never disagree.
    - synchronous=NORMAL: safe with WAL (a power cut may lose the last commits, never
      corrupts the file) and saves an fsync per transaction.
    https://www.sqlite.org/wal.html
    """
    if connection.vendor != "sqlite":
        return
    busy_timeout_ms = int(connection.settings_dict["OPTIONS"].get("timeout", 5) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
