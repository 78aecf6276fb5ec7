"""What the HTTP benchmarks share: gunicorn as production runs it, and an open-loop load
generator with latency percentiles.

Open loop: request *i* is sent at ``start + i / rate`` whether or not earlier ones have
answered, and its latency counts from when it was due, so a slow server cannot hide its
queueing (no coordinated omission). The generator (asyncio, one bare protocol per request:
see ``_Exchange``) runs in the benchmark's own process on the same machine as the server,
with the cycle collector off while it runs (``open_loop``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Call:
    """One request of the load: method, path, headers and an optional JSON body."""

    method: str
    path: str
    headers: dict
    json: dict | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_start(workers: int, *, threads: int = 1) -> tuple[subprocess.Popen, str]:
    """gunicorn as the Procfile runs it, production settings, on a free loopback port."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    env.pop("DEBUG", None)
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--log-level", "warning"]
    if threads > 1:
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.3)
    gunicorn_stop(process)
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def gunicorn_stop(process: subprocess.Popen) -> None:
    """Stop the gunicorn we started (its own process group: the master and its workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _Exchange(asyncio.Protocol):
    """One request on its own connection (``Connection: close``: gunicorn's sync workers
    serve one request per connection): write it, read the answer until its Content-Length
    is in, close, keep the status code. Closing then, as HTTP clients do, matters: in
    gunicorn 27 (``util.close_graceful``) a worker lingers after its response until the client closes (RFC 9112
    §9.6), so a generator that waited for the server's close held each worker for one
    more turn of its own event loop.
    A bare protocol costs the generator a fraction of a full HTTP client's CPU, and the
    generator shares the server's CPUs."""

    def __init__(self, payload: bytes, done: asyncio.Future):
        self.payload, self.done, self.chunks = payload, done, []

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        # The answer is complete when its Content-Length is in: the client has it then (as
        # any HTTP client would, it closes its side at once instead of waiting for the
        # server's close; gunicorn lingers until the client closes, RFC 9112 §9.6).
        answer = b"".join(self.chunks)
        head, sep, body = answer.partition(b"\r\n\r\n")
        if sep:
            length = self._length(head)
            if length is not None and len(body) >= length:
                self._finish(head, body, length)
                self.transport.close()

    @staticmethod
    def _length(head: bytes) -> int | None:
        return next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                     if line.lower().startswith(b"content-length:")), None)

    def _finish(self, head: bytes, body: bytes, length: int | None) -> None:
        status_line = head.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2 or not status_line[1].isdigit():
            self.done.set_result("BadResponse")
            return
        # A body cut short is an error, not an answer.
        self.done.set_result(int(status_line[1]) if length is None or length == len(body) else "ShortBody")

    def connection_lost(self, error) -> None:
        if self.done.done():
            return
        if error is not None:
            self.done.set_result(type(error).__name__)
            return
        # Closed by the server before a complete answer (or one without Content-Length).
        head, _sep, body = b"".join(self.chunks).partition(b"\r\n\r\n")
        self._finish(head, body, self._length(head))


def _payload(host: str, call: Call) -> bytes:
    body = json.dumps(call.json).encode() if call.json is not None else b""
    headers = {"Host": host, "Connection": "close", "X-Forwarded-Proto": "https", **call.headers}
    if call.json is not None:
        headers.update({"Content-Type": "application/json", "Content-Length": str(len(body))})
    lines = [f"{call.method} {call.path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _send(address: tuple[str, int], payload: bytes, due: float, results: list) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport = None
    # One timer per request that cancels it wherever it waits (connecting or answering);
    # ``asyncio.wait_for`` would add a task and a timer per step.
    timer = loop.call_later(TIMEOUT, asyncio.current_task().cancel)
    try:
        transport, _protocol = await loop.create_connection(lambda: _Exchange(payload, done), *address)
        status = await done
    except asyncio.CancelledError:
        status = "Timeout"
    except Exception as error:  # noqa: BLE001 - a failed request is a counted error, not a crash
        status = type(error).__name__
    finally:
        timer.cancel()
        if transport is not None:
            transport.close()
    results.append((due, time.perf_counter(), status))


TIMEOUT = 60.0  # seconds a request may take before it counts as an error


async def _open_loop(base: str, call_for: Callable[[int], Call], rate: float, duration: float) -> tuple[list, float]:
    host = base.split("://", 1)[1]
    name, port = host.rsplit(":", 1)
    address = (name, int(port))
    results: list = []
    total = int(rate * duration)
    tasks = []
    start = time.perf_counter() + 0.1
    for i in range(total):
        due = start + i / rate
        payload = _payload(host, call_for(i))
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_send(address, payload, due, results)))
    await asyncio.gather(*tasks)
    return results, start


def open_loop(base: str, call_for: Callable[[int], Call], *, rate: float, duration: float) -> tuple[list, float]:
    """Send ``call_for(i)`` for i in 0 .. rate × duration, each when due; returns
    ``(results, start)`` with one ``(due, done, status)`` per request."""
    import uvloop

    # The generator must not pause: a full collection of this process's heap (Django and
    # the world the benchmark built) took ~110 ms, and every request due meanwhile went
    # out late and counted as slow. What exists is frozen, and nothing is collected during
    # the run (its allocations are freed by reference counting).
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return uvloop.run(_open_loop(base, call_for, rate, duration))
    finally:
        gc.enable()
        gc.unfreeze()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else float("nan")


def report(results: list, start: float, *, what: str, ok_status: int, rate: float, duration: float, target_rate: float,
           target_p99_ms: float) -> tuple[int, int]:
    """Print throughput, latency percentiles and errors against the targets; returns (ok, errors)."""
    ok = [(due, done) for due, done, status in results if status == ok_status]
    errors: dict = {}
    for _due, _done, status in results:
        if status != ok_status:
            errors[status] = errors.get(status, 0) + 1
    latencies = [(done - due) * 1000 for due, done in ok]
    elapsed = max((done for _due, done, _status in results), default=start) - start
    achieved = len(ok) / elapsed if elapsed > 0 else 0.0
    p50, p95, p99 = (percentile(latencies, share) for share in (0.50, 0.95, 0.99))
    print(f"load: {len(results)} {what} offered at {rate:g}/s for {duration:g}s (open loop)")
    print(f"{what}/s achieved: {achieved:,.1f} ({len(ok)} answered {ok_status} in {elapsed:.1f}s)  [target >= {target_rate:g}] "
          f"{'OK' if achieved >= target_rate * 0.98 else 'BELOW TARGET'}")
    print(f"latency ms (from when due): p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  max {max(latencies, default=0):.1f}  "
          f"[target p99 < {target_p99_ms:g}] {'OK' if p99 < target_p99_ms else 'BELOW TARGET'}")
    print(f"errors: {sum(errors.values())} {errors if errors else ''}", flush=True)
    episodes = slow_episodes([(due - start, (done - due) * 1000) for due, done in ok], over_ms=target_p99_ms)
    if episodes:
        shown = ", ".join(f"{first:.1f}–{last:.1f} s ({count}, max {worst:.0f} ms)" for first, last, worst, count in episodes[:8])
        print(f"over {target_p99_ms:g} ms: {sum(e[3] for e in episodes)} requests in {len(episodes)} stretch(es), "
              f"by when they were due: {shown}{' …' if len(episodes) > 8 else ''}", flush=True)
    return len(ok), sum(errors.values())


def slow_episodes(timings: list[tuple[float, float]], *, over_ms: float, gap_s: float = 0.3) -> list[tuple]:
    """The requests slower than ``over_ms``, grouped into stretches (due within ``gap_s`` of
    the previous slow one): (first due s, last due s, slowest ms, count). One short stretch
    is a stall (a collection, the host); slow requests all along are a CPU short of work."""
    episodes: list[list] = []
    for due, ms in sorted(timings):
        if ms <= over_ms:
            continue
        if episodes and due - episodes[-1][1] < gap_s:
            episode = episodes[-1]
            episode[1], episode[2], episode[3] = due, max(episode[2], ms), episode[3] + 1
        else:
            episodes.append([due, due, ms, 1])
    return [tuple(episode) for episode in episodes]


# --- where the CPU went ------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) used so far by every process: pid -> (group, seconds).
    Groups: ``server`` (gunicorn), ``postgres``, ``load generator`` (this process), ``other``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file:
                stat = stat_file.read()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline_file:
                command = cmdline_file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        seconds = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        if int(entry) == os.getpid():
            group = "load generator"
        elif "gunicorn" in command:
            group = "server"
        elif stat[stat.index("(") + 1:stat.rindex(")")] == "postgres":
            group = "postgres"
        else:
            group = "other"
        found[int(entry)] = (group, seconds)
    found[STEAL] = ("steal", _steal_seconds())
    return found


STEAL = -1  # cpu_snapshot's key for the host's steal time (no process has this pid)


def _steal_seconds() -> float:
    """CPU time the hypervisor gave to others while this machine's CPUs wanted it (the
    ``steal`` column of ``/proc/stat``): a latency spike with steal beside it is the host's."""
    try:
        with open("/proc/stat") as stat_file:
            fields = stat_file.readline().split()
        return int(fields[8]) / _CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_report(before: dict, after: dict, requests: int) -> None:
    """Print the CPU each group used per answered request between two snapshots: what the
    machine's two CPUs are spent on (the server's share is what the code can change)."""
    used: dict[str, float] = {}
    for pid, (group, seconds) in after.items():
        used[group] = used.get(group, 0.0) + seconds - before.get(pid, (group, 0.0))[1]
    steal = used.pop("steal", 0.0)
    if requests:
        parts = ", ".join(f"{group} {used.get(group, 0.0) / requests * 1000:.2f}"
                          for group in ("server", "postgres", "load generator", "other"))
        print(f"CPU ms per request: {parts}; total {sum(used.values()) / requests * 1000:.2f}; "
              f"host steal during the run {steal * 1000:.0f} ms", flush=True)


def machine(connection) -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    return f"{os.cpu_count()} CPUs ({model}), PostgreSQL {version}"
