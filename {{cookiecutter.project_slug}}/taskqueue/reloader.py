"""Restart the cluster when the project's code changes, as runserver does (DEBUG only).

`manage.py qcluster` starts a CodeWatcher; when a Python file of the project is added,
edited or removed, the cluster stops cleanly (running tasks finish, the others go back
to the queue) and the command replaces itself with a fresh one: same process id, same
arguments, new code. `--noreload` turns it off; with DEBUG off it is off.
"""

import os
import sys
import threading
import time

# Folders never watched, besides hidden ones (.venv, .git).
IGNORED_DIRS = {"__pycache__", "node_modules", "staticfiles", "backups", "venv"}
POLL_SECONDS = 1


def snapshot(root):
    """{path: modification time} of the Python files under root."""
    mtimes = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if not name.startswith(".") and name not in IGNORED_DIRS]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                try:
                    mtimes[path] = os.stat(path).st_mtime_ns
                except FileNotFoundError:  # removed while we looked
                    pass
    return mtimes


class CodeWatcher(threading.Thread):
    """Polls root's Python files; on the first change, records it and calls on_change().

    The files are read when it is made: make it before the code it watches is loaded,
    so that no change falls between the two."""

    def __init__(self, root, on_change):
        super().__init__(name="code-watcher", daemon=True)
        self.root = root
        self.on_change = on_change
        self.before = snapshot(root)
        self.changed = []

    def run(self):
        while not self.changed:
            time.sleep(POLL_SECONDS)
            after = snapshot(self.root)
            self.changed = sorted(
                path
                for path in self.before.keys() | after.keys()
                if self.before.get(path) != after.get(path)
            )
        self.on_change()


def restart():
    """Replace this process with the same command, started afresh."""
    os.execv(sys.executable, [sys.executable, *sys.argv])
