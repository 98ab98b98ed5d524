"""`python -m gamedb ARGS` without paying for Python's imports on every call: a fork server for the tests.

A test suite that runs the command line two thousand times spends most of its time importing
SQLAlchemy, Alembic and psycopg (about 0.5 s a process). This server imports them and gamedb's own
modules once, then forks a fresh child per command: the child has the state of a process that has just
imported them (nothing more: no service is imported, no entry point read, no connection open), sets the caller's
environment, working directory, `sys.path` (from PYTHONPATH, as the interpreter would) and argv, and
runs the module as `python -m` does. Its stdin, stdout and stderr are the caller's file descriptors,
passed over a Unix socket, and the caller gets its exit status the way `subprocess.run` reports it.

Only what a process can't tell apart from a fresh interpreter runs here; tests that time start-up,
send signals or read a process's own startup (tests/test_cli_startup.py, `spawn_cli`) start real
processes. `GAMEDB_TEST_FORK=0` turns the server off for a run: every call is a real process then.

Protocol, per connection: the client sends one JSON request with three file descriptors (stdin,
stdout, stderr); the server forks a waiter that forks the command, waits for it and writes back one
JSON line {"status": <os.waitstatus_to_exitcode>}.
"""

from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# what every command would import anyway; importing them is the cost the server saves (with gamedb's
# own modules, which the command line imports lazily: see preload)
PRELOAD = (
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.orm",
    "psycopg",
    "alembic.command",
    "alembic.config",
    "alembic.autogenerate",
    "alembic.runtime.migration",
    "alembic.operations",
    "gamedb.cli",
)


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter does with SystemExit's argument."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_command(request: dict, base_path: list[str]) -> int:
    """In the forked child: become `python -m MODULE ARGS` in the caller's environment and run."""
    for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL if number != signal.SIGINT else signal.default_int_handler)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [request["cwd"], *extra, *base_path]
    importlib.invalidate_caches()
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False))
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, errors="backslashreplace")
    sys.argv = [request["module"], *request["args"]]
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:  # noqa: BLE001 - an uncaught error: its traceback and status 1, as the interpreter does
        import traceback

        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    return code


def _serve_one(conn: socket.socket, base_path: list[str]) -> None:
    """In the waiter: fork the command with the caller's descriptors, wait, report its status."""
    payload, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(payload)
    pid = os.fork()
    if pid == 0:
        conn.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os._exit(_run_command(request, base_path))
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    conn.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status), "pid": pid}).encode() + b"\n")


def preload() -> None:
    """Import the libraries, then every gamedb module a command may import lazily (not `gamedb.__main__`,
    which runs the command line, nor `gamedb.testing`, which is pytest's)."""
    import pkgutil

    for name in PRELOAD:
        importlib.import_module(name)
    gamedb = importlib.import_module("gamedb")
    for module in pkgutil.walk_packages(gamedb.__path__, "gamedb."):
        if module.name != "gamedb.__main__" and not module.name.startswith("gamedb.testing"):
            importlib.import_module(module.name)


PARENT_CHECK_SECONDS = 1.0  # how often an idle server looks whether the test process that started it is gone


def serve(path: str) -> None:
    """The server's loop: preload, then one waiter process per connection."""
    preload()
    base_path = [p for p in sys.path[1:]]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # waiters are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    parent = os.getppid()
    listener.settimeout(PARENT_CHECK_SECONDS)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the test process died without stopping its server: so does the server
                return
            continue
        conn.setblocking(True)
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                _serve_one(conn, base_path)
            finally:
                os._exit(0)
        conn.close()


class ForkServer:
    """The client: one server process per test process, started on first use, stopped at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._path = ""

    def _start(self, cwd: Path) -> None:
        directory = tempfile.mkdtemp(prefix="gamedb-fork-")
        self._path = os.path.join(directory, "socket")
        env = {k: v for k, v in os.environ.items() if k not in {"GAMEDB_URL", "PYTHONPATH"}}
        self._process = subprocess.Popen(
            [sys.executable, __file__, self._path], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError("the tests' fork server did not start")
        atexit.register(self.stop)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def run(
        self, module: str, args: list[str], *, cwd: Path, env: dict[str, str], stdin: str | None, timeout: float
    ) -> tuple[int, str, str]:
        """Run `python -m module args`; returns (exit code, stdout, stderr) like subprocess.run would."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start(cwd)
        request = json.dumps({"module": module, "args": args, "cwd": str(cwd), "env": env}).encode()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
            inp.write((stdin or "").encode())
            inp.seek(0)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(timeout)
                conn.connect(self._path)
                socket.send_fds(conn, [request], [inp.fileno(), out.fileno(), err.fileno()])
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        raise RuntimeError("the tests' fork server closed the connection without a status")
                    reply += chunk
            status = json.loads(reply)["status"]
            out.seek(0)
            err.seek(0)
            return status, out.read().decode(errors="replace"), err.read().decode(errors="replace")


if __name__ == "__main__":
    serve(sys.argv[1])
