"""Run the project's processes the way an operator does: the one home of process control.

Start a manage.py command in its own process group, wait until a cluster is running,
stop the group (SIGTERM, a bounded wait, then SIGKILL), run manage.py to completion,
and run the producer processes of tests/producer.py. The tests use these helpers;
so do the template's post-generation step and its benchmark, which is why this module
imports nothing but the standard library.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Bounds for everything a caller waits on: nothing here can hang.
COMMAND_TIMEOUT = 60
READY_TIMEOUT = 30
STOP_TIMEOUT = 10
# qcluster logs this line once its workers, monitor and pusher are up.
CLUSTER_RUNNING = b"] running."
PRODUCERS = 4


def command_env(env=None):
    """os.environ with env's variables added (they win)."""
    return {**os.environ, **(env or {})}


def run_manage(
    *args, python=sys.executable, cwd=BASE_DIR, env=None, timeout=COMMAND_TIMEOUT, prefix=()
):
    """Run `python manage.py ARGS` to completion; return it with its text output captured.

    prefix goes before the command: `ip netns exec NAME` runs it on a test host."""
    return subprocess.run(
        [*map(str, prefix), str(python), "manage.py", *map(str, args)],
        cwd=cwd,
        env=command_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Process:
    """A long-running process in its own process group, with its output in a file."""

    popen: subprocess.Popen
    log_path: Path | None

    @property
    def pid(self):
        return self.popen.pid

    def log(self):
        if self.log_path is None:
            return ""
        return self.log_path.read_text(errors="replace")


def start_manage(*args, python=sys.executable, **kwargs):
    """Start `python manage.py ARGS`; see start_command() for the other arguments."""
    return start_command([python, "manage.py", *args], **kwargs)


def start_command(args, log_path=None, cwd=BASE_DIR, env=None):
    """Start a command in a new session (so a process group of its own).

    Its output goes to log_path, or nowhere when log_path is None. Stop it with
    stop_process_group(), whatever happens in between.
    """
    output = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        popen = subprocess.Popen(
            [str(arg) for arg in args],
            cwd=cwd,
            env=command_env(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log_path:
            output.close()
    return Process(popen, Path(log_path) if log_path else None)


def start_cluster(log_path=None, skip_checks=False, reload=False, **kwargs):
    """Start `manage.py qcluster`; see start_manage() for the other arguments.

    skip_checks starts it even when a system check fails (a test that compresses the
    timings on purpose); reload lets it restart on code changes when DEBUG is on.
    """
    args = ["qcluster"]
    if not reload:
        args.append("--noreload")
    if skip_checks:
        args.append("--skip-checks")
    return start_manage(*args, log_path=log_path, **kwargs)


def wait_until_running(cluster, timeout=READY_TIMEOUT, marker=CLUSTER_RUNNING):
    """Wait until a cluster started with a log_path logs that it runs (marker: bytes
    that another command logs once it is ready).

    Raises RuntimeError, with the end of the log, if it exits or takes longer.
    """
    deadline = time.monotonic() + timeout
    while marker not in cluster.log_path.read_bytes():
        if cluster.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"{' '.join(cluster.popen.args[1:])} did not start within {timeout} s (exit code "
                f"{cluster.popen.poll()}); the end of its log:\n{cluster.log()[-2000:]}"
            )
        time.sleep(0.1)


def stop_process_group(process, timeout=STOP_TIMEOUT):
    """Stop a process started by start_manage(), and every process of its group.

    SIGTERM goes to the main process only: a cluster then stops its workers in order
    (a SIGTERM to the whole group would kill the workers under it and leave it
    waiting). It lets running tasks finish, so after `timeout` seconds the whole
    group gets SIGKILL, which also reaps any process left behind.
    """
    popen = process.popen if isinstance(process, Process) else process
    try:
        popen.send_signal(signal.SIGTERM)
        popen.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    popen.wait(timeout=timeout)


def kill_process_group(process):
    """SIGKILL a process started by start_command() and every process of its group, as
    a crash or a lost machine would end them; wait for the main one."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.popen.wait(timeout=STOP_TIMEOUT)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout, interval=0.1):
    """Poll condition() until it returns something truthy; return it, or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return None


def run_producers(
    total,
    pattern="atomic",
    producers=PRODUCERS,
    python=sys.executable,
    cwd=BASE_DIR,
    env=None,
    timeout=COMMAND_TIMEOUT,
    module="tests.producer",
    options=(),
):
    """Enqueue `total` tasks from `producers` processes at once (tests/producer.py).

    Producer n enqueues keys pn-0, pn-1, ...; returns their JSON reports (enqueued,
    errors, latencies_ms). Raises RuntimeError if a producer fails. `options` go to
    each producer's command line; `module` runs another producer with the same
    arguments and report.
    """
    counts = [total // producers + (n < total % producers) for n in range(producers)]
    processes = [
        subprocess.Popen(
            [str(python), "-m", module, "--prefix", f"p{n}", "--count", str(count)]
            + ["--pattern", pattern, *options],
            cwd=cwd,
            env=command_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, count in enumerate(counts)
    ]
    reports = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise RuntimeError(f"a producer failed (exit {process.returncode}):\n{err}")
            reports.append(json.loads(out))
    finally:
        for process in processes:
            process.kill()
            process.wait()
    return reports
