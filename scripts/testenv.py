#!/usr/bin/env python3
"""Run a command against throwaway PostgreSQL and Redis servers.

``make test`` uses this so the test suite talks to *real* PostgreSQL and Redis
without depending on system services, docker, or whatever already listens on
5432/6379:

* Every run gets its own servers, on free ports of 127.0.0.1, with their data in
  a fresh temporary directory. Parallel runs don't collide and nothing outlives
  the run: the servers are stopped and the directory is removed whatever
  happens (normal exit, exception, Ctrl-C, SIGTERM, SIGHUP).
* PostgreSQL refuses to run as root, which is what containers and CI jobs
  usually are. As root, initdb and pg_ctl therefore run as an unprivileged user
  (the ``postgres`` system user, or a system user ``ottbss-test`` created on
  demand) that owns the temporary directory.
* The PostgreSQL server programs come from /usr/lib/postgresql/<version>/bin
  (highest version), not from PATH: on Debian, PATH holds pg_wrapper scripts or
  local shims, and initdb is not on PATH at all.
* If PostgreSQL or Redis is missing and we are root on a system with apt-get,
  it is installed; otherwise we say what to install and exit with status 2.
* If DATABASE_URL / REDIS_URL is already set, that server is used as given and
  nothing is started for it.

Usage::

    python3 scripts/testenv.py [--no-postgres] [--no-redis]
                               [--keep-env-file PATH] -- CMD ARGS...

CMD runs with DATABASE_URL=postgres://postgres@127.0.0.1:PORT/ottbss and
REDIS_URL=redis://127.0.0.1:PORT/0 added to its environment. Exit status: the
command's (128+N if it died from signal N), 1 if a server failed to start,
2 if required software is missing and could not be installed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Callable, Iterator, Sequence

PG_LIB_DIR = Path("/usr/lib/postgresql")
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")
PG_SUPERUSER = "postgres"
PG_DATABASE = "ottbss"
FALLBACK_SERVER_USER = "ottbss-test"
REDIS_DIRS = (Path("/usr/bin"), Path("/usr/sbin"))

PG_READY_TIMEOUT = 30.0
REDIS_READY_TIMEOUT = 15.0
STOP_TIMEOUT = 30.0
# A port picked as free can be taken by someone else before the server binds it.
START_ATTEMPTS = 3
# After we forwarded a signal to the command: seconds until SIGTERM, then SIGKILL.
CHILD_TERM_AFTER = 10.0
CHILD_KILL_AFTER = 15.0
LOG_TAIL_LINES = 40

INSTALL_POSTGRES_HINT = (
    "install PostgreSQL 15+ (server, with initdb/pg_ctl under "
    f"{PG_LIB_DIR}/<version>/bin): sudo apt-get install postgresql, "
    "or set DATABASE_URL to an existing database"
)
INSTALL_REDIS_HINT = (
    "install Redis: sudo apt-get install redis-server, "
    "or set REDIS_URL to an existing server"
)


class SetupError(Exception):
    """A server could not be provided; ``code`` is the exit status to use."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(BaseException):
    """Raised by the signal handler while the servers are being started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def log(message: str) -> None:
    print(f"testenv: {message}", file=sys.stderr, flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = LOG_TAIL_LINES, start: int = 0) -> str:
    """The last lines of a log file (from byte offset ``start``), or '' if unreadable."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --- installing missing software -------------------------------------------


def run_apt(*args: str) -> None:
    """Run apt-get quietly (its output goes to stderr, keeping stdout clean)."""
    subprocess.run(
        ["apt-get", "-o", "DPkg::Lock::Timeout=300", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr.fileno(),
        check=True,
    )


@functools.cache
def apt_update() -> None:
    """``apt-get update``, at most once per run (a failure is not cached)."""
    run_apt("update", "-qq")


def apt_install(package: str) -> bool:
    """Install ``package`` if we are root on an apt system; True on success."""
    if not is_root() or shutil.which("apt-get") is None:
        return False
    log(f"{package} is missing; installing it with apt-get ...")
    try:
        apt_update()
        run_apt("install", "-y", "-qq", package)
    except subprocess.CalledProcessError as exc:
        log(f"apt-get failed ({exc})")
        return False
    return True


# --- locating binaries -----------------------------------------------------


@dataclass(frozen=True)
class PgBinaries:
    """The server programs of one PostgreSQL version (a Debian lib bin dir)."""

    version: str
    bindir: Path

    def path(self, program: str) -> str:
        return str(self.bindir / program)

    def has(self, program: str) -> bool:
        return os.access(self.bindir / program, os.X_OK)


def version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def find_postgres() -> PgBinaries | None:
    """The highest PostgreSQL version under /usr/lib/postgresql with a server."""
    found = [
        PgBinaries(bindir.parent.name, bindir)
        for bindir in PG_LIB_DIR.glob("*/bin")
        if all(os.access(bindir / p, os.X_OK) for p in PG_PROGRAMS)
    ]
    return max(found, key=lambda b: version_key(b.version), default=None)


def find_redis() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    for directory in REDIS_DIRS:
        candidate = directory / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_postgres() -> PgBinaries:
    binaries = find_postgres()
    if binaries is None and apt_install("postgresql"):
        binaries = find_postgres()
    if binaries is None:
        raise SetupError(f"PostgreSQL server not found; {INSTALL_POSTGRES_HINT}", code=2)
    return binaries


def require_redis() -> str:
    binary = find_redis()
    if binary is None and apt_install("redis-server"):
        binary = find_redis()
    if binary is None:
        raise SetupError(f"redis-server not found; {INSTALL_REDIS_HINT}", code=2)
    return binary


# --- running PostgreSQL as an unprivileged user ----------------------------


@dataclass(frozen=True)
class Account:
    """Who runs PostgreSQL's server programs: ourselves, or (as root) a plain user."""

    name: str | None  # None: the current user, no switching
    uid: int
    gid: int

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` rewritten to run as this account."""
        if self.name is None:
            return list(argv)
        if shutil.which("runuser"):
            return ["runuser", "-u", self.name, "--", *argv]
        if shutil.which("setpriv"):
            return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                    "--init-groups", "--", *argv]
        return ["su", "-s", "/bin/sh", "-c", shlex.join(argv), self.name]

    def own(self, path: Path) -> None:
        if self.name is not None:
            os.chown(path, self.uid, self.gid)


def server_account() -> Account:
    """The current user, or as root the ``postgres`` user (else ``ottbss-test``)."""
    if not is_root():
        return Account(None, os.getuid(), os.getgid())
    for name in (PG_SUPERUSER, FALLBACK_SERVER_USER):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return Account(name, entry.pw_uid, entry.pw_gid)
    subprocess.run(["useradd", "--system", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", FALLBACK_SERVER_USER], check=True)
    entry = pwd.getpwnam(FALLBACK_SERVER_USER)
    return Account(FALLBACK_SERVER_USER, entry.pw_uid, entry.pw_gid)


def pg_environ() -> dict[str, str]:
    """Our environment without PG* variables, which would steer the PG tools."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


# --- the servers ------------------------------------------------------------


class Postgres:
    """A throwaway PostgreSQL cluster in ``workdir``, managed with pg_ctl."""

    name = "PostgreSQL"

    def __init__(self, binaries: PgBinaries, account: Account, workdir: Path) -> None:
        self.bin = binaries
        self.account = account
        self.workdir = workdir
        self.data = workdir / "pgdata"
        self.sockdir = workdir / "pgsocket"
        self.logfile = workdir / "postgres.log"
        self.port = 0

    @property
    def url(self) -> str:
        return f"postgres://{PG_SUPERUSER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def start(self) -> dict[str, str]:
        self.sockdir.mkdir()
        self.account.own(self.sockdir)
        self._initdb()
        self._start_server()
        self._wait_ready()
        self._create_database()
        log(f"PostgreSQL {self.bin.version} on 127.0.0.1:{self.port} (data in {self.data})")
        return {"DATABASE_URL": self.url}

    def stop(self) -> None:
        """Fast shutdown; immediate shutdown or SIGKILL if that does not work."""
        if not (self.data / "postmaster.pid").exists():
            return
        for mode in ("fast", "immediate"):
            if self._pg_ctl("stop", "-m", mode).returncode == 0:
                return
        pid = self._postmaster_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _run_as_server_user(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.account.wrap(argv), cwd=self.workdir, env=pg_environ(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=timeout,
            start_new_session=True,  # keep a terminal's Ctrl-C away from the server
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run_as_server_user(
            [self.bin.path("pg_ctl"), "-D", str(self.data), "-w",
             "-t", str(int(STOP_TIMEOUT)), *args],
            timeout=STOP_TIMEOUT + 10,
        )

    def _initdb(self) -> None:
        result = self._run_as_server_user(
            [self.bin.path("initdb"), "-D", str(self.data), "-U", PG_SUPERUSER,
             "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            timeout=120,
        )
        if result.returncode != 0:
            raise SetupError(f"initdb failed:\n{result.stdout.rstrip()}")

    def _start_server(self) -> None:
        for _attempt in range(START_ATTEMPTS):
            self.port = free_port()
            log_start = file_size(self.logfile)
            options = (f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c max_connections=200")
            result = self._run_as_server_user(
                [self.bin.path("pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
                 "-w", "-t", str(int(PG_READY_TIMEOUT)), "-o", options, "start"],
                timeout=PG_READY_TIMEOUT + 10,
            )
            if result.returncode == 0:
                return
            new_log = tail(self.logfile, start=log_start)
            if "Address already in use" not in new_log:
                raise SetupError(f"PostgreSQL failed to start:\n{result.stdout.rstrip()}\n"
                                 f"--- {self.logfile} (tail) ---\n{new_log}")
        raise SetupError(f"PostgreSQL found no free port in {START_ATTEMPTS} attempts")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + PG_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._accepts_connections():
                return
            time.sleep(0.2)
        raise SetupError("PostgreSQL does not accept connections:\n"
                         f"--- {self.logfile} (tail) ---\n{tail(self.logfile)}")

    def _accepts_connections(self) -> bool:
        if self.bin.has("pg_isready"):
            argv = [self.bin.path("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                    "-U", PG_SUPERUSER, "-d", "postgres", "-t", "2"]
            return subprocess.run(argv, env=pg_environ(), stdin=subprocess.DEVNULL,
                                  timeout=10).returncode == 0
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def _create_database(self) -> None:
        conn = ["-h", "127.0.0.1", "-p", str(self.port), "-U", PG_SUPERUSER]
        if self.bin.has("createdb"):
            argv = [self.bin.path("createdb"), *conn, PG_DATABASE]
        else:
            argv = [self.bin.path("psql"), *conn, "-d", "postgres", "-qX",
                    "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {PG_DATABASE}"]
        result = subprocess.run(argv, env=pg_environ(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=60)
        if result.returncode != 0:
            raise SetupError(f"creating database {PG_DATABASE} failed:\n{result.stdout.rstrip()}")

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


class Redis:
    """A throwaway, non-persistent redis-server running as our subprocess."""

    name = "Redis"

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.logfile = workdir / "redis.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, str]:
        for _attempt in range(START_ATTEMPTS):
            self.port = free_port()
            log_start = file_size(self.logfile)
            self._spawn()
            if self._wait_ready():
                log(f"Redis on 127.0.0.1:{self.port}")
                return {"REDIS_URL": f"redis://127.0.0.1:{self.port}/0"}
            self.stop()
            new_log = tail(self.logfile, start=log_start)
            if "Address already in use" not in new_log:
                raise SetupError(f"Redis failed to start:\n--- {self.logfile} (tail) ---\n{new_log}")
        raise SetupError(f"Redis found no free port in {START_ATTEMPTS} attempts")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _spawn(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                "--daemonize", "no", "--protected-mode", "no"]
        with self.logfile.open("ab") as logf:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # keep a terminal's Ctrl-C away from the server
            )

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + REDIS_READY_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            if redis_ping(self.port):
                return True
            time.sleep(0.1)
        return False


def redis_ping(port: int) -> bool:
    """True if a Redis server on 127.0.0.1:port answers PING with +PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


Server = Postgres | Redis


# --- signals and the command -----------------------------------------------


def foreground_on_terminal() -> bool:
    """True if our process group owns the terminal (so Ctrl-C hits the command too)."""
    for fd in (0, 1, 2):
        try:
            return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


class SignalGuard:
    """Turns SIGINT/SIGTERM/SIGHUP into an orderly shutdown.

    While the servers start, a signal raises ``Interrupted`` so the ``finally``
    block cleans up; inside ``deferred()`` that waits for the end of the block
    (unless a second signal comes), because killing runuser would orphan a
    running initdb or pg_ctl behind our back. While the command runs, the signal is forwarded to it and
    we keep waiting for it to exit (escalating if it lingers); a Ctrl-C typed on
    the terminal already reached the command, which shares our process group, so
    that one is not sent twice. During cleanup signals are noted and ignored.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.phase = "startup"  # -> "command" -> "cleanup"
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: int | None = None  # arrived before the child existed
        self.received_at: float | None = None
        self.deferring = False
        self.deferred_signal: int | None = None

    def install(self) -> None:
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a startup signal back until the block is done."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.deferred_signal is not None:
            raise Interrupted(self.deferred_signal)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        if self.pending is not None:
            self._forward(self.pending)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.phase == "startup":
            if self.deferring and self.deferred_signal is None:
                self.deferred_signal = signum
                os.write(2, b"testenv: finishing PostgreSQL startup, then cleaning up"
                            b" (signal again to abort now)\n")
                return
            raise Interrupted(signum)
        if self.phase == "cleanup":
            return
        if self.received_at is None:
            self.received_at = time.monotonic()
        if self.child is None:
            self.pending = signum
        else:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        if signum == signal.SIGINT and foreground_on_terminal():
            return
        assert self.child is not None
        self.child.send_signal(signum)


def exit_status(returncode: int) -> int:
    """A Popen return code as a shell-style exit status (128+N for signal N)."""
    return 128 - returncode if returncode < 0 else returncode


def run_command(command: Sequence[str], env: dict[str, str], guard: SignalGuard) -> int:
    """Run the command to completion and return its exit status."""
    guard.phase = "command"
    try:
        child = subprocess.Popen(list(command), env=env)
    except FileNotFoundError:
        log(f"command not found: {command[0]}")
        return 127
    except PermissionError:
        log(f"command not executable: {command[0]}")
        return 126
    guard.attach(child)
    return exit_status(wait_for_child(child, guard))


def wait_for_child(child: subprocess.Popen[bytes], guard: SignalGuard) -> int:
    """Wait for the command; once we got a signal, SIGTERM/SIGKILL it if it lingers."""
    escalation: list[tuple[float, Callable[[], None]]] = [
        (CHILD_TERM_AFTER, child.terminate),
        (CHILD_KILL_AFTER, child.kill),
    ]
    while True:
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        if guard.received_at is None or not escalation:
            continue
        delay, action = escalation[0]
        if time.monotonic() - guard.received_at >= delay:
            escalation.pop(0)
            action()


# --- main ----------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="testenv.py",
        usage="%(prog)s [options] -- CMD ARGS...",
        description="Run CMD with DATABASE_URL/REDIS_URL pointing at throwaway "
                    "PostgreSQL and Redis servers (unless already set).",
    )
    parser.add_argument("--no-postgres", action="store_true",
                        help="do not start PostgreSQL")
    parser.add_argument("--no-redis", action="store_true",
                        help="do not start Redis")
    parser.add_argument("--keep-env-file", metavar="PATH", type=Path,
                        help="write the exported variables as KEY=VALUE lines to PATH")
    argv = list(argv)
    options, command = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) \
        if "--" in argv else (argv, [])
    args = parser.parse_args(options)
    if not command:
        parser.error("no command given after --")
    return args, command


def write_env_file(path: Path, variables: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in variables.items()))


def plan_servers(args: argparse.Namespace) -> tuple[PgBinaries | None, str | None]:
    """Which servers to start; binaries are located (or installed) up front."""
    want_pg = not args.no_postgres and "DATABASE_URL" not in os.environ
    want_redis = not args.no_redis and "REDIS_URL" not in os.environ
    return (require_postgres() if want_pg else None,
            require_redis() if want_redis else None)


def remove_tree(path: Path, attempts: int = 5) -> None:
    """rmtree, retrying while exiting server processes may still create files."""
    for _attempt in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.2)
    log(f"could not remove {path}")


def stop_servers(servers: list[Server], workdir: Path | None) -> None:
    for server in reversed(servers):
        try:
            server.stop()
        except Exception as exc:  # keep going: the other server and the dir
            log(f"stopping {server.name} failed: {exc}")
    if workdir is not None:
        remove_tree(workdir)
    if servers:
        log("stopped " + " and ".join(server.name for server in servers))


def main(argv: Sequence[str] | None = None) -> int:
    args, command = parse_args(sys.argv[1:] if argv is None else argv)
    guard = SignalGuard()
    guard.install()
    servers: list[Server] = []
    workdir: Path | None = None
    try:
        try:
            pg_binaries, redis_binary = plan_servers(args)
            exported: dict[str, str] = {}
            if pg_binaries or redis_binary:
                workdir = Path(tempfile.mkdtemp(prefix="ottbss-testenv-"))
            if pg_binaries:
                account = server_account()
                account.own(workdir)
                servers.append(Postgres(pg_binaries, account, workdir))
                with guard.deferred():
                    exported |= servers[-1].start()
            if redis_binary:
                servers.append(Redis(redis_binary, workdir))
                exported |= servers[-1].start()
        except SetupError as exc:
            log(str(exc))
            return exc.code
        if args.keep_env_file:
            write_env_file(args.keep_env_file, exported)
        return run_command(command, {**os.environ, **exported}, guard)
    except Interrupted as exc:
        log(f"interrupted by {exc}")
        return 128 + exc.signum
    finally:
        guard.phase = "cleanup"
        stop_servers(servers, workdir)


if __name__ == "__main__":
    sys.exit(main())
