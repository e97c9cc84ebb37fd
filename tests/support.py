"""Real parts for tests and benchmarks: the sandbox's control API and a Celery worker process."""

import os
from contextlib import contextmanager
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sparkbot_sandbox.server import serve_in_thread

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


def database_url_in_use() -> str:
    """A URL for the database this process's Django connection uses (the test database)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Worker:
    """A real `celery worker` process (with beat, the sweeper's clock, when asked)."""

    def __init__(self, env: dict, log_path: Path, concurrency: int = 2, beat: bool = False, loglevel: str = "INFO",
                 pool: str = "prefork"):
        self.env, self.log_path, self.concurrency, self.beat, self.loglevel = env, log_path, concurrency, beat, loglevel
        self.pool = pool
        self.process = None

    def start(self, timeout: float = 30):
        self.log = open(self.log_path, "ab")
        ready_before = self.log_path.read_bytes().count(b" ready.")
        command = [sys.executable, "-m", "celery", "-A", "sparkbot_dash", "worker", "--loglevel", self.loglevel,
                   "--concurrency", str(self.concurrency), "--pool", self.pool, "--without-gossip", "--without-mingle",
                   "--without-heartbeat"]
        if self.beat:
            command += ["--beat", "--schedule", str(self.log_path.with_suffix(".beat"))]
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
