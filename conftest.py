"""Shared fixtures: the real sandbox over HTTP, a real Celery worker process, users, a browser."""

import os

# pytest-django's live_server with Playwright's sync API (see ../shared/PITFALLS.md).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402

from sparkbot_sandbox.server import serve_in_thread  # noqa: E402

ROOT = Path(__file__).resolve().parent
WORKER_SETTINGS = {
    "SPARKBOT_TIMEOUT": "1",
    "SPARKBOT_MAX_ATTEMPTS": "4",
    "SPARKBOT_RETRY_BASE_SECONDS": "0.05",
    "SPARKBOT_RETRY_MAX_SECONDS": "0.5",
}


class Sandbox:
    """The sandbox serving in this process, and its control API for tests."""

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
        state = self.control("GET", "/devices")
        devices = state.get("devices", state) if isinstance(state, dict) else state
        for device in devices:
            if device["id"] == device_id:
                return device.get("queue") or {}
        raise KeyError(device_id)


@pytest.fixture(scope="session")
def sandbox_server():
    server, _url = serve_in_thread(0)
    yield server
    server.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _point_at_sandbox(sandbox_server):
    """Every SparkBot call of the test process goes to the sandbox with worker-like limits."""
    from django.conf import settings

    from queues import sparkbot

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    settings.SPARKBOT_API_URL = sandbox_server.base_url
    for name, value in WORKER_SETTINGS.items():
        setattr(settings, name, type(getattr(settings, name))(value))
    sparkbot.client_reset()
    yield
    sparkbot.client_reset()


@pytest.fixture
def sandbox(sandbox_server):
    """A freshly seeded sandbox, and a cold device cache, for each test."""
    from queues import devices

    box = Sandbox(sandbox_server)
    box.reset()
    devices.device_list_forget()
    yield box
    box.reset()
    devices.device_list_forget()


def _test_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Worker:
    """A real `celery worker` process on the test database, the test broker and the sandbox."""

    def __init__(self, env: dict, log_path: Path):
        self.env, self.log_path, self.process = env, log_path, None

    def start(self, timeout: float = 30):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "sparkbot_dash", "worker", "--loglevel", "INFO",
             "--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat"],
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


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, sandbox_server, tmp_path_factory):
    from sparkbot_dash.celery import app

    with django_db_blocker.unblock():
        database_url = _test_database_url()
    env = {**os.environ, **WORKER_SETTINGS, "DATABASE_URL": database_url,
           "SPARKBOT_API_URL": sandbox_server.base_url, "PYTHONUNBUFFERED": "1"}
    app.control.purge()  # nothing a previous run left in the broker
    worker = Worker(env, tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def lead(django_user_model):
    return django_user_model.objects.create_user("lead", password="lead-password-123")


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


# Playwright: Debian's Chromium, never a downloaded browser.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    }
