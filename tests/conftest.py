import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 300


def run(args, cwd, env=None, timeout=COMMAND_TIMEOUT):
    """Run a command; return the CompletedProcess (text output captured)."""
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def manage(project, *args, python=sys.executable, env=None, timeout=COMMAND_TIMEOUT):
    """Run `python manage.py ARGS` in a generated project."""
    return run([python, "manage.py", *args], cwd=project, env=env, timeout=timeout)


def bake_ok(cookies, **answers):
    """Bake with create_virtualenv=no (the test interpreter has the requirements)."""
    result = cookies.bake(extra_context={"create_virtualenv": "no", **answers})
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    return result.project_path


@pytest.fixture(scope="session")
def default_project(cookies_session):
    """The project generated with the default answers, baked once per session."""
    return bake_ok(cookies_session)


def stop_process_group(process, timeout=10):
    """Stop a process started with start_new_session=True and everything under it.

    SIGTERM to the leader lets a qcluster stop its workers in order; SIGKILL to the
    whole group after `timeout` seconds (django-q2 waits for running tasks).
    """
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=timeout)


@pytest.fixture
def start_process():
    """Start long-running processes in their own session; all are stopped at teardown."""
    processes = []

    def start(args, cwd, log_path):
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(arg) for arg in args],
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        return process

    yield start
    for process in processes:
        stop_process_group(process)
