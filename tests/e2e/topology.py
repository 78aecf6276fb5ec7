"""The real topology on loopback, as an operator runs it: gunicorn serving ``config.wsgi``,
a Celery worker and Celery beat (``celery -A config``), the Nagra simulator and localstripe,
each a separate process on a free port of 127.0.0.1.

Every process runs in its own session (process group), logs to a file under the test's
temporary directory and is registered here, so it is stopped when its owner stops it, when
the pytest fixture that started it is finalised, and — whatever happens — when the test
process exits (``atexit``). A process that dies unexpectedly shows the tail of its log in
the failing assertion. The Celery worker and beat are *supervised* — restarted when they
exit on their own, as systemd's ``Restart=always`` or a PaaS does in production (defence in
depth: losing Redis no longer ends them, and a test that expects the same process throughout
checks ``Service.restarts`` and the pid).

The subprocesses use ``tests.e2e.settings`` (the test settings with a fast beat schedule):
Celery is not eager, the Nagra endpoint is the simulator and the Stripe API base is
localstripe (or whatever the test puts in the environment).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TypeVar

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SETTINGS = "tests.e2e.settings"
START_TIMEOUT = 40.0
STOP_TIMEOUT = 10.0

T = TypeVar("T")
_RUNNING: set["Service"] = set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2,
               services: tuple["Service", ...] = (), detail: Callable[[], object] | None = None) -> T:
    """Poll ``check`` until it returns something truthy (which is returned), or fail after
    ``timeout`` seconds saying ``what`` did not happen (with the logs of ``services``)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 — the thing polled may not answer yet
            last_error = error
        if time.monotonic() > deadline:
            logs = "".join(f"\n--- {service.name} (tail) ---\n{service.tail()}" for service in services)
            state = f"\nstate: {detail()!r}" if detail else ""
            raise AssertionError(f"{what}: not within {timeout:.0f}s (last error: {last_error!r}){state}{logs}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


@dataclass(eq=False)
class Service:
    """One long-running process of the topology."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    ready_text: str | None = None  # or: a line the log shows once the process serves
    supervised: bool = False  # restarted when it exits on its own, as systemd's Restart=always does
    restarts: int = 0
    process: subprocess.Popen | None = None
    _log_size: int = 0

    def start(self, *, wait: bool = True) -> "Service":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        _RUNNING.add(self)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        if self.ready_url is not None:
            wait_until(lambda: self._check_alive() and http_ok(self.ready_url), timeout=START_TIMEOUT,
                       what=f"{self.name} answering at {self.ready_url}", services=(self,))
        if self.ready_text is not None:
            start = self._log_size
            wait_until(lambda: self._check_alive() and self.ready_text in self._log_since(start), timeout=START_TIMEOUT,
                       what=f"{self.name} ready", services=(self,))

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _check_alive(self) -> bool:
        if not self.alive:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
        return True

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the whole process group (a prefork worker's children too)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, no goodbye: what the OOM killer or a pulled plug does (not restarted
        by the supervisor: the test starts it again when it wants)."""
        _RUNNING.discard(self)
        self.signal(signal.SIGKILL)
        self._reap()

    def supervise(self) -> None:
        """Start it again if it exited although nobody stopped it."""
        if self.supervised and self in _RUNNING and self.process is not None and self.process.poll() is not None:
            with self.log_path.open("ab") as log:
                log.write(f"\n=== supervisor: exited with {self.process.returncode}, restarting\n".encode())
            self.restarts += 1
            self.start(wait=False)

    def stop(self) -> None:
        """SIGTERM (a warm shutdown), SIGKILL if it lingers."""
        _RUNNING.discard(self)
        if not self.alive:
            self._reap()
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        if self.process is not None:
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        _RUNNING.discard(self)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all() -> None:
    for service in list(_RUNNING):
        service.stop()


def _supervisor() -> None:
    while True:
        time.sleep(0.5)
        for service in list(_RUNNING):
            try:
                service.supervise()
            except Exception:  # noqa: BLE001 — keep supervising the others
                pass


atexit.register(stop_all)
threading.Thread(target=_supervisor, name="e2e-supervisor", daemon=True).start()


@dataclass
class Topology:
    """The processes of one deployment and the environment they share."""

    workdir: Path
    env: dict[str, str]
    services: dict[str, Service] = field(default_factory=dict)
    web_port: int = 0

    @classmethod
    def create(cls, workdir: Path, *, database_url: str, redis_url: str, **extra: str) -> "Topology":
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "DJANGO_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "false", "PYTHONUNBUFFERED": "1",
            "NAGRA_CONNECT_TIMEOUT": "1", "NAGRA_OPERATION_TIMEOUT": "2", "NAGRA_RETRY_BASE_SECONDS": "1",
            # Several chunks per worker process in the tests' batches (3,000 records), so a
            # worker killed after the first chunk commits leaves records to take over.
            "RATING_CHUNK_SIZE": "500",
            "NAGRA_RETRY_MAX_SECONDS": "2", "LOG_LEVEL": "INFO", **extra,
        })
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CELERY_RESULT_BACKEND", None)
        return cls(workdir=workdir, env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _service(self, name: str, argv: list[str], ready_url: str | None = None, ready_text: str | None = None,
                 env: dict[str, str] | None = None, supervised: bool = False) -> Service:
        service = Service(name=name, argv=argv, env={**self.env, **(env or {})}, log_path=self.workdir / f"{name}.log",
                          ready_url=ready_url, ready_text=ready_text, supervised=supervised)
        self.services[name] = service
        return service

    # --- the processes ------------------------------------------------------------------

    def simulator(self, *, port: int | None = None, wait: bool = True) -> Service:
        port = port or free_port()
        self.env["NAGRA_ENDPOINT"] = f"http://127.0.0.1:{port}/smsservice_1.2"
        return self._service("nagra", [sys.executable, "manage.py", "nagra_simulator", "--port", str(port)],
                             ready_url=f"http://127.0.0.1:{port}/smsservice_1.2?wsdl").start(wait=wait)

    def localstripe(self, *, wait: bool = True) -> Service:
        port = free_port()
        self.env["STRIPE_API_BASE"] = f"http://127.0.0.1:{port}"
        return self._service("localstripe", [str(BIN / "localstripe"), "--port", str(port), "--from-scratch"],
                             ready_url=f"http://127.0.0.1:{port}/js.stripe.com/v3/").start(wait=wait)

    def gunicorn(self, *, name: str = "gunicorn", workers: int = 2, wait: bool = True, **env: str) -> Service:
        """The web server; a second one (another ``name``, its own port and ``env``) serves
        the same deployment with, say, another Stripe address."""
        port = free_port()
        if name == "gunicorn":
            self.web_port = port
        return self._service(name, [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
                                    "--workers", str(workers), "--timeout", "60", "--graceful-timeout", "5",
                                    "--access-logfile", "-"],
                             ready_url=f"http://127.0.0.1:{port}/healthz", env=env).start(wait=wait)

    def worker(self, *, name: str = "worker", concurrency: int = 2, wait: bool = True) -> Service:
        return self._service(name, [str(BIN / "celery"), "-A", "config", "worker", "--loglevel", "INFO",
                                    "--concurrency", str(concurrency), "--hostname", f"{name}-{os.getpid()}@%h",
                                    "--without-gossip", "--without-mingle"], ready_text=" ready.", supervised=True).start(wait=wait)

    def beat(self, *, wait: bool = True) -> Service:
        return self._service("beat", [str(BIN / "celery"), "-A", "config", "beat", "--loglevel", "INFO",
                                      "--schedule", str(self.workdir / "celerybeat-schedule")],
                             ready_text="beat: Starting", supervised=True).start(wait=wait)

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()

    @contextmanager
    def paused(self, *names: str) -> Iterator[None]:
        """Stop these processes for the block (another deployment works on the same data),
        then start them again."""
        for name in names:
            self.services[name].stop()
        try:
            yield
        finally:
            for name in names:
                self.services[name].start()

    def logs(self) -> str:
        return "".join(f"\n--- {name} (tail) ---\n{service.tail()}" for name, service in self.services.items())


def database_url_for(name: str) -> str:
    """DATABASE_URL with its database replaced by ``name`` (pytest-django's test database)."""
    base, _, _old = os.environ["DATABASE_URL"].rpartition("/")
    return f"{base}/{name}"


def redis_url_db(url: str, db: int) -> str:
    """REDIS_URL on another logical database: the topology's queues stay apart from what
    other tests in the session publish to the shared server."""
    base, _, _old = url.rpartition("/")
    return f"{base}/{db}"


def url_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


# --- faults: a server that never answers, servers we may stop and start again ----------------

class HangingServer:
    """A TCP server that accepts connections, reads, and never answers: a gateway that hangs.
    ``connections`` counts the attempts that reached it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def start(self) -> "HangingServer":
        self._thread.start()
        return self

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            self._held.append(conn)  # kept open, never answered

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self.sock.close()


def _testenv():
    """scripts/testenv.py (not a package), imported by path, once."""
    name = "ottbss_testenv"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "testenv.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)  # registered first: its dataclasses look it up
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


testenv = _testenv()


class OwnRedis(testenv.Redis):
    """A throwaway Redis (never the session's), restartable on the same port."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(testenv.require_redis(), workdir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self) -> None:
        self.stop()
        self._spawn()
        assert self._wait_ready(), f"Redis did not come back on port {self.port}:\n{testenv.tail(self.logfile)}"


class OwnPostgres(testenv.Postgres):
    """A throwaway PostgreSQL cluster (never the session's), stoppable and restartable on
    the same port, so the processes pointed at it keep their DATABASE_URL."""

    def __init__(self) -> None:
        # Under /tmp, not pytest's private tmp_path: the server runs as an unprivileged user.
        workdir = Path(tempfile.mkdtemp(prefix="ottbss-e2e-pg-"))
        account = testenv.server_account()
        account.own(workdir)
        super().__init__(testenv.require_postgres(), account, workdir)

    def remove(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        testenv.remove_tree(self.workdir)

    def restart(self) -> None:
        options = (f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        result = self._run_as_server_user([self.bin.path("pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-w",
                                           "-t", "30", "-o", options, "start"], timeout=40)
        assert result.returncode == 0, f"PostgreSQL did not start again: {result.stdout}\n{testenv.tail(self.logfile)}"
        self._wait_ready()

    def copy_from(self, source_url: str) -> None:
        """Schema and data of ``source_url`` into this cluster's database (pg_dump | psql)."""
        dump = subprocess.run([self.bin.path("pg_dump"), "--no-owner", "--no-privileges", "-d", source_url],
                              capture_output=True, check=True, env=testenv.pg_environ())
        restore = subprocess.run([self.bin.path("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url], input=dump.stdout,
                                 capture_output=True, env=testenv.pg_environ())
        assert restore.returncode == 0, restore.stderr.decode()[-2000:]
