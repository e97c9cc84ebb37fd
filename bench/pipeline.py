#!/usr/bin/env python
"""Measure the reroute pipeline's own overhead and the route page's server time.

    make bench            # PostgreSQL + Redis, as docs/PERFORMANCE.md reports
    .venv/bin/python bench/pipeline.py --reroutes 200 --devices 1000

Overhead of one reroute = (submit to end) - (time inside its SparkBot calls), with the
sandbox answering at once: what the form, the database, the broker and the worker add.
Reroutes run one after another so that each one's figure is its own. The route page is
timed server-side (Django's handler, in process) with 1,000 devices in the cached list.
Runs on a fresh test database (created and dropped here) and a fresh sandbox.
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")
os.environ.setdefault("SECRET_KEY", "insecure-key-for-benchmarks-only")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # its test client speaks plain HTTP
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from sparkbot_sandbox.state import SandboxState  # noqa: E402
from tests.support import Sandbox, Worker, database_url_in_use, timing_summary  # noqa: E402


def measure_route_page(client, requests: int) -> list[float]:
    client.get("/reroute/")  # warm: the device list and its rendered options are cached
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/reroute/")
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    return timings


def usable_pairs(device_list, count: int) -> list[tuple[str, str]]:
    usable = [d.id for d in device_list.devices if d.is_usable]
    return [(usable[i % len(usable)], usable[(i + 1) % len(usable)]) for i in range(count)]


def measure_reroutes(client, sandbox: Sandbox, pairs) -> tuple[list[float], list[float]]:
    from queues.models import Reroute

    overheads, totals = [], []
    for source, target in pairs:
        sandbox.set_queue(source, pending=10, processing=0, scheduled=0)
        submitted = time.time()
        response = client.post("/reroute/", {"source": source, "target": target, "note": "bench",
                                             "idempotency_key": str(uuid.uuid4())})
        assert response.status_code == 302, response.content[:500]
        pk = int(response["Location"].strip("/").split("/")[-1])
        reroute = wait_for_end(Reroute, pk)
        assert reroute.status == "succeeded", reroute.error_message
        total = reroute.ended_at.timestamp() - submitted
        totals.append(total)
        overheads.append(total - reroute.sparkbot_seconds)
    return overheads, totals


def wait_for_end(Reroute, pk: int, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reroute = Reroute.objects.get(pk=pk)
        if not reroute.is_active:
            return reroute
        time.sleep(0.002)
    raise RuntimeError(f"reroute {pk} did not end within {timeout} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reroutes", type=int, default=200)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--page-requests", type=int, default=300)
    args = parser.parse_args()

    sandbox = Sandbox(SandboxState(extra_devices=max(0, args.devices - 15)))
    api_url = sandbox.api_url
    os.environ["SPARKBOT_API_URL"] = api_url
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from queues import devices
    from sparkbot_dash.celery import app

    print(f"database: {connection.vendor}; broker: {settings.CELERY_BROKER_URL.split('://')[0]}; "
          f"sandbox latency 0 ms", flush=True)
    setup_test_environment()  # lets Django's test client in
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    worker = Worker({**os.environ, "DATABASE_URL": database_url_in_use(), "SPARKBOT_API_URL": api_url},
                    Path(tempfile.mkdtemp()) / "worker.log", concurrency=1)
    try:
        app.control.purge()
        worker.start()
        devices.device_list_forget()
        from django.contrib.auth.models import Group, Permission

        from queues.roles import SUPPORT_LEAD, roles_ensure

        roles_ensure(Group, Permission)
        user = get_user_model().objects.create_user("bench", password="bench-password-123")
        user.groups.add(Group.objects.get(name=SUPPORT_LEAD))
        client = Client()
        client.force_login(user)

        page = measure_route_page(client, args.page_requests)
        count = len(devices.device_list().devices)
        print(f"GET /reroute/ with {count} devices cached: {timing_summary(page)}", flush=True)

        pairs = usable_pairs(devices.device_list(), args.reroutes)
        measure_reroutes(client, sandbox, pairs[:10])  # warm-up, not counted
        overheads, totals = measure_reroutes(client, sandbox, pairs)
        print(f"reroute submit to end:         {timing_summary(totals)}")
        print(f"reroute overhead (minus SparkBot time): {timing_summary(overheads)}")
    finally:
        worker.stop()
        connection.creation.destroy_test_db(test_db, verbosity=0)
        sandbox.stop()


if __name__ == "__main__":
    main()
