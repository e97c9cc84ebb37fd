"""Real parts for tests and benchmarks: the sandbox's control API and a Celery worker process."""

import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# Short limits so that retries and timeouts play out in seconds.
WORKER_SETTINGS = {
    "SPARKBOT_TIMEOUT": "1",
    "SPARKBOT_MAX_ATTEMPTS": "4",
    "SPARKBOT_RETRY_BASE_SECONDS": "0.05",
    "SPARKBOT_RETRY_MAX_SECONDS": "0.5",
}


class Sandbox:
    """A running sandbox server, and its control API."""

    def __init__(self, server):
        self.server = server
        self.api_url = server.base_url
        self.control_url = self.api_url.removesuffix("/v1") + "/_sandbox"
        self.http = httpx.Client(base_url=self.control_url, timeout=10)

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
    """A real `celery worker` process."""

    def __init__(self, env: dict, log_path: Path, concurrency: int = 2):
        self.env, self.log_path, self.concurrency, self.process = env, log_path, concurrency, None

    def start(self, timeout: float = 30):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "sparkbot_dash", "worker", "--loglevel", "INFO",
             "--concurrency", str(self.concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while b" ready." not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
