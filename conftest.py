"""Shared fixtures: the real sandbox over HTTP, a real Celery worker process, users, a browser."""

import os

# pytest-django's live_server with Playwright's sync API (see ../shared/PITFALLS.md).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.support import (  # noqa: E402
    WORKER_SETTINGS, RedisServer, Sandbox, Worker, celery_publishes_to, database_url_in_use, free_port,
)


# The suite speaks plain HTTP with DEBUG off (Django's test client, live_server + Chromium), where the
# production defaults redirect every request to HTTPS and keep cookies off plain HTTP. The test process,
# and the Django processes it starts, turn those off here; tests/test_deploy.py and tests/test_settings.py
# prove the defaults in clean processes.
PLAIN_HTTP = {"SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false"}


def pytest_configure(config):
    from django.conf import settings

    os.environ.update(PLAIN_HTTP)
    for name in PLAIN_HTTP:
        setattr(settings, name, False)
    _flush_tries_again_after_a_deadlock()


def _flush_tries_again_after_a_deadlock() -> None:
    """A module's worker keeps its beat running between tests: a monitor cycle that writes while a
    transactional test's flush truncates the tables can deadlock with it, and PostgreSQL aborts one
    of the two. When it aborts the flush, the flush runs again (the worker's transaction is short)."""
    from django.core.management.base import CommandError
    from django.core.management.commands import flush

    handle = flush.Command.handle

    def handle_again_after_a_deadlock(self, **options):
        for attempt in range(5):
            try:
                return handle(self, **options)
            except CommandError as error:
                if attempt == 4 or "deadlock detected" not in str(error.__cause__):
                    raise
                time.sleep(0.2)

    flush.Command.handle = handle_again_after_a_deadlock


@pytest.fixture(scope="session")
def sandbox_server():
    box = Sandbox()
    yield box
    box.stop()


@pytest.fixture(scope="session", autouse=True)
def _point_at_sandbox(sandbox_server):
    """Every SparkBot call of the test process goes to the sandbox with worker-like limits."""
    from django.conf import settings

    from queues import sparkbot

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    # Tests make many users and sign in often; what they test is the flow, not PBKDF2's cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SPARKBOT_API_URL = sandbox_server.api_url
    for name, value in WORKER_SETTINGS.items():
        setattr(settings, name, type(getattr(settings, name))(value))
    sparkbot.client_reset()
    yield
    sparkbot.client_reset()


@pytest.fixture
def sandbox(sandbox_server):
    """A freshly seeded sandbox, and a cold device cache (and pickers' cache), for each test."""
    from queues import devices, pickers

    box = sandbox_server
    box.reset()
    devices.device_list_forget()
    pickers.forget()  # the monitor's version starts again with each test's database
    yield box
    box.reset()
    devices.device_list_forget()
    pickers.forget()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, dropped at the end even when a connection outlived its thread.

    A browser test's server leaves a connection open in a context nothing closes; PostgreSQL then
    refuses to drop the database (a warning, and the database stays behind). Its session ends here.
    """
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, sandbox_server, tmp_path_factory):
    from sparkbot_dash.celery import app

    with django_db_blocker.unblock():
        database_url = database_url_in_use()
    env = {**os.environ, **WORKER_SETTINGS, "DATABASE_URL": database_url,
           "SPARKBOT_API_URL": sandbox_server.api_url, "PYTHONUNBUFFERED": "1"}
    app.control.purge()  # nothing a previous run left in the broker
    worker = Worker(env, tmp_path_factory.mktemp("worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


def user_with_role(username: str, role: str | None):
    """A user holding a role (groups are made again here: transactional tests flush them)."""
    from django.contrib.auth.models import Group, Permission, User

    from queues.roles import roles_ensure

    roles_ensure(Group, Permission)
    user = User.objects.create_user(username, password=f"{username}-password-123")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """A test with a worker ends only when the worker is idle: the database flush must not race it."""
    if any(isinstance(value, Worker) for value in getattr(item, "funcargs", {}).values()):
        workers_idle()
    yield


def workers_idle(timeout: float = 30) -> None:
    from queues.models import HandoverRun, Reroute
    from sparkbot_dash.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy_rows = (Reroute.objects.filter(status__in=Reroute.ACTIVE).exists()
                     or HandoverRun.objects.filter(ended_at__isnull=True).exists())
        inspect = app.control.inspect(timeout=0.3)
        busy_tasks = any((inspect.active() or {}).values()) or any((inspect.reserved() or {}).values())
        if not busy_rows and not busy_tasks and not _tasks_waiting_in_broker(app):
            return
        time.sleep(0.05)


def _tasks_waiting_in_broker(app) -> int:
    """Messages not yet taken by any worker (on Redis; the filesystem broker is not looked into)."""
    if not app.conf.broker_url.startswith("redis"):
        return 0
    with app.connection_for_read() as connection:
        return connection.default_channel.client.llen("celery")


@pytest.fixture
def make_user(db):
    """make_user(username, role) -> a new user holding that role (None: no role)."""
    return user_with_role


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A private redis-server as this module's broker, which its tests may stop and start."""
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs Redis as the broker (make test-production)")
    server = RedisServer(free_port(), tmp_path_factory.mktemp("broker") / "redis.log")
    server.start()
    original = settings.CELERY_BROKER_URL
    celery_publishes_to(server.url)
    yield server
    celery_publishes_to(original)
    server.stop()


@pytest.fixture(scope="module")
def worker_on_broker(broker, django_db_setup, django_db_blocker, tmp_path_factory):
    """start(api_url, env={...}, **worker_options) -> a worker on this module's private broker and the
    test database, stopped when the module ends."""
    started = []

    def start(api_url: str, env: dict | None = None, **options) -> Worker:
        with django_db_blocker.unblock():
            database_url = database_url_in_use()
        worker_env = {**os.environ, **WORKER_SETTINGS, "DATABASE_URL": database_url, "REDIS_URL": broker.url,
                      "SPARKBOT_API_URL": api_url, "PYTHONUNBUFFERED": "1", **(env or {})}
        worker = Worker(worker_env, tmp_path_factory.mktemp("worker") / "worker.log", **options)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    if started:  # what their beat wrote after the module's last test was flushed must not reach the next module
        from django.core.management import call_command

        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def lead(db):
    return user_with_role("lead", "Support lead")


@pytest.fixture
def manager(db):
    return user_with_role("manager", "Shift manager")


@pytest.fixture
def admin_user(db):
    return user_with_role("admin", "Admin")


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


# htmx reports a request it cancelled itself as errors: a newer one replaced it (hx-sync "replace").
HTMX_OWN_CANCELLATION = ("htmx:sendAbort", "htmx:afterRequest")


def browser_error(message) -> bool:
    return message.type == "error" and not message.text.startswith(HTMX_OWN_CANCELLATION)


@pytest.fixture
def browser_as(page, live_server):
    """browser_as(username) -> the page, signed in through the sign-in form (the user must exist, made
    by user_with_role). At the end, the test fails if any dialog opened (injected script ran), or the
    browser reported an error: a Content-Security-Policy violation, a script's, or htmx's own."""
    from playwright.sync_api import expect

    dialogs, errors = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: browser_error(message) and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))

    def sign_in(username: str):
        page.goto(f"{live_server.url}/")
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(f"{username}-password-123")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{live_server.url}/reroute/")
        return page

    yield sign_in
    assert dialogs == []
    assert errors == []


# Playwright: Debian's Chromium, never a downloaded browser.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    }


@pytest.fixture
def fleet_read(sandbox, settings):
    """The monitor has read every number once: Sales-1 went offline with 400 queued messages."""
    from queues import monitor
    from sparkbot_sandbox.seed import SALES_1, SEED_DEVICES

    settings.MONITOR_CALLS_PER_MINUTE = 600
    settings.MONITOR_CYCLE_SECONDS = 10
    sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    sandbox.set_queue(SALES_1, pending=400)
    assert monitor.monitor_cycle().readings == len(SEED_DEVICES)
    return sandbox


@pytest.fixture
def receiver():
    """receiver(**options) -> a webhook receiver that checks signatures (tests/webhook_receiver.py),
    stopped at the end of the test."""
    from tests.webhook_receiver import WebhookReceiver

    made = []

    def start(**options):
        made.append(WebhookReceiver(**options))
        return made[-1]

    yield start
    for server in made:
        server.stop()
