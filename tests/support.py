"""Real parts for tests and benchmarks: the sandbox's control API, a Celery worker process,
private Redis and PostgreSQL servers that a test may crash and restart."""

import os
from contextlib import contextmanager
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sparkbot_sandbox.server import serve_in_thread
from sparkbot_sandbox.state import DEFAULT_API_KEY

ROOT = Path(__file__).resolve().parent.parent
# Short limits so that retries and timeouts play out in seconds.
WORKER_SETTINGS = {
    "SPARKBOT_TIMEOUT": "1",
    "SPARKBOT_MAX_ATTEMPTS": "4",
    "SPARKBOT_RETRY_BASE_SECONDS": "0.05",
    "SPARKBOT_RETRY_MAX_SECONDS": "0.5",
}


class Sandbox:
    """A sandbox serving from this process on a fixed port, and its control API."""

    def __init__(self, state=None):
        self.server, self.api_url = serve_in_thread(0, state=state)
        self.port = self.server.server_address[1]
        self.control_url = self.api_url.removesuffix("/v1") + "/_sandbox"
        self.http = httpx.Client(base_url=self.control_url, timeout=10)

    def stop(self):
        """Close the port: SparkBot is unreachable (connection refused) until start()."""
        self.server.shutdown()

    def start(self):
        self.server, _url = serve_in_thread(self.port, state=self.server.state)

    def control(self, method: str, path: str, json=None):
        response = self.http.request(method, path, json=json)
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self):
        self.control("POST", "/reset")

    def fault(self, **spec):
        self.control("POST", "/faults", json=spec)

    def set_queue(self, device_id: str, **counts):
        self.control("POST", f"/queues/{device_id}", json=counts)

    def calls(self, *, method: str | None = None, path_contains: str = "") -> list[dict]:
        calls = self.control("GET", "/calls")
        return [c for c in calls if (method is None or c["method"] == method) and path_contains in c["path"]]

    def queue(self, device_id: str) -> dict:
        for device in self.control("GET", "/devices")["devices"]:
            if device["id"] == device_id:
                return device["queue"]
        raise KeyError(device_id)

    def set_latency(self, ms: float) -> None:
        self.control("POST", "/latency", json={"ms": ms})

    def chaos(self, *, rate: float, seed: int = 1, kinds: list[str] | None = None, hang_seconds: float = 2,
              retry_after: int = 1, slow_seconds: float = 12, routes: list[str] | None = None) -> dict:
        """Fail a random share of API calls from now on (kinds: sparkbot_sandbox.state.CHAOS_KINDS,
        a kind listed twice is picked twice as often)."""
        spec = {"rate": rate, "seed": seed, "hang_seconds": hang_seconds, "retry_after": retry_after,
                "slow_seconds": slow_seconds}
        spec.update({name: value for name, value in (("kinds", kinds), ("routes", routes)) if value is not None})
        return self.control("POST", "/chaos", json=spec)["chaos"]

    def chaos_stop(self) -> dict:
        """Stop failing calls; returns the chaos report (faults injected by kind)."""
        return self.control("DELETE", "/chaos")

    def chaos_report(self) -> dict:
        """{"active", "settings", "injected": {kind: n}, "total", "calls"}."""
        return self.control("GET", "/chaos")

    def routes(self, source: str | None = None) -> list[dict]:
        """The sandbox's own ledger of routes carried out: source, target, moved, at, answer_lost."""
        response = self.http.get("/routes", params={"source": source} if source else None)
        response.raise_for_status()
        return response.json()

    def clear_calls(self) -> None:
        self.control("DELETE", "/calls")

    def route_by_hand(self, source: str, target: str) -> httpx.Response:
        """Route a queue through the API itself, as another SparkBot client would."""
        api_key = getattr(self, "api_key", None) or self.server.state.api_key
        return httpx.patch(f"{self.api_url}/devices/{source}/queue", json={"device": target},
                           headers={"Token": api_key}, timeout=10)


class SandboxProcess(Sandbox):
    """The sandbox in a process of its own (its CPU apart from the caller's), with the same control API.

    stop() ends the process and its state with it, so start() is not offered.
    """

    def __init__(self, *, extra_devices: int = 0, latency_ms: float = 0, api_key: str = DEFAULT_API_KEY):
        self.api_key = api_key
        self.server = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sparkbot_sandbox", "--port", "0", "--extra-devices", str(extra_devices),
             "--latency-ms", str(latency_ms)],
            cwd=ROOT, env={**os.environ, "SPARKBOT_API_KEY": api_key}, stdout=subprocess.PIPE, text=True,
        )
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        line = self.process.stdout.readline() if selector.select(15) else ""
        match = re.fullmatch(r"SparkBot sandbox on (http://[^\s]+:(\d+)/v1)", line.strip())
        if not match:
            self.process.kill()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.api_url, self.port = match.group(1), int(match.group(2))
        self.control_url = self.api_url.removesuffix("/v1") + "/_sandbox"
        self.http = httpx.Client(base_url=self.control_url, timeout=10)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self):
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process.stdout.close()

    def start(self):
        raise NotImplementedError("a sandbox process keeps its state in memory: make a new one")


def database_url_in_use() -> str:
    """A URL for the database this process's Django connection uses (the test database)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def tamper(sql: str, params: list) -> None:
    """Change audit rows as someone with full SQL access would: on PostgreSQL, past the append-only
    triggers too (a superuser's session_replication_role)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


class Worker:
    """A real `celery worker` process (with beat, the sweeper's clock, when asked)."""

    def __init__(self, env: dict, log_path: Path, concurrency: int = 2, beat: bool = False, loglevel: str = "INFO",
                 pool: str = "prefork", hostname: str | None = None, include: str = ""):
        self.env, self.log_path, self.concurrency, self.beat, self.loglevel = env, log_path, concurrency, beat, loglevel
        self.pool = pool
        self.hostname = hostname  # e.g. "soak-1@%h": several workers on one broker need distinct names
        self.include = include  # more task modules, e.g. a benchmark's own
        self.process = None

    def start(self, timeout: float = 30):
        self.log = open(self.log_path, "ab")
        ready_before = self.log_path.read_bytes().count(b" ready.")
        command = [sys.executable, "-m", "celery", "-A", "sparkbot_dash", "worker", "--loglevel", self.loglevel,
                   "--concurrency", str(self.concurrency), "--pool", self.pool, "--without-gossip", "--without-mingle",
                   "--without-heartbeat"]
        if self.beat:
            command += ["--beat", "--schedule", str(self.log_path.with_suffix(".beat"))]
        if self.hostname:
            command += ["--hostname", self.hostname]
        if self.include:
            command += ["--include", self.include]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.log_path.read_bytes().count(b" ready.") <= ready_before:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self):
        """SIGKILL the worker and its pool processes at once: no warm shutdown, no acks."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class RedisServer:
    """A private redis-server that a test may stop and start again (never the shared one)."""

    def __init__(self, port: int, log_path: Path):
        self.port, self.log_path, self.process = port, log_path, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout != b"PONG\n":
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self):
        self.process.kill()
        self.process.wait()

    def is_up(self) -> bool:
        ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True)
        return self.process is not None and self.process.poll() is None and ping.stdout == b"PONG\n"


class PostgresServer:
    """A private PostgreSQL cluster that a test or bench may crash and restart (never the shared one).

    The server refuses to run as root: as root, its folder belongs to the postgres user and
    every command runs through runuser. crash() is `pg_ctl stop -m immediate`: no shutdown
    checkpoint, connections cut, crash recovery at the next start().
    """

    def __init__(self, port: int):
        self.port = port
        self.bin = self.find_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) were not found")
        self.folder = Path(tempfile.mkdtemp(prefix="sparkbot-pg-"))
        self.data = self.folder / "data"
        self.log_path = self.folder / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")

    @staticmethod
    def find_bin() -> Path | None:
        """The newest /usr/lib/postgresql/N/bin holding initdb and pg_ctl, or None."""
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                            if p.parent.name.isdigit() else 0)
        found = [path for path in candidates if (path / "initdb").exists() and (path / "pg_ctl").exists()]
        return found[-1] if found else None

    @classmethod
    def available(cls) -> bool:
        as_root_ok = os.geteuid() != 0 or shutil.which("runuser") is not None
        return cls.find_bin() is not None and as_root_ok

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(prefix + list(command), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:2])} failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log_path),
                  "-w", "-t", "60", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would (`-m immediate`)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        if self.is_up():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def is_up(self) -> bool:
        return self.pid() is not None

    def pid(self) -> int | None:
        """The postmaster's process id, while it runs."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def celery_publishes_to(url: str) -> None:
    """Make this process's Celery app publish to another broker from now on."""
    from kombu import pools

    from sparkbot_dash.celery import app

    pools.reset()  # closes and forgets every pooled connection, whatever its broker
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def sparkbot_settings(**overrides):
    """Point this process's SparkBot client (and its device cache) elsewhere for a while."""
    from django.conf import settings

    from queues import devices, sparkbot

    original = {name: getattr(settings, name) for name in overrides}
    for name, value in overrides.items():
        setattr(settings, name, value)
    sparkbot.client_reset()
    devices.device_list_forget()
    try:
        yield
    finally:
        for name, value in original.items():
            setattr(settings, name, value)
        sparkbot.client_reset()
        devices.device_list_forget()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timing_summary(seconds: list[float]) -> str:
    """n, p50, p95, p99 and max of durations in seconds, in milliseconds."""
    import statistics

    ms = [s * 1000 for s in seconds]
    return (f"n={len(ms)} p50 {statistics.median(ms):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
            f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms")
