#!/usr/bin/env python
"""Measure the API's reroute overhead beside the browser form's, and 1,000 webhook deliveries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sparkbot_dash_bench_api \
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/api.py
    # --reroutes N per path (default 200), --deliveries N (default 1,000)

1. Overhead of one reroute = (submit to end) - (time inside its SparkBot calls), as bench/pipeline.py
   measures it, for the browser form (POST /reroute/, a signed-in session) and for the API
   (POST /api/v1/reroutes, a personal token, an Idempotency-Key), interleaved one by one in the same
   run, so that both see the same machine.
2. 1,000 webhook deliveries to a local receiver (a process of its own that verifies every Standard
   Webhooks signature; the endpoint also wants every reroute's own event): deliveries per second,
   from waking the sender to the last 2xx;
   and the reroute overhead again while they are being sent, beside the overhead just before and after.

A fresh test database (created and dropped here), a fresh sandbox, and one Celery worker with two
processes (one sends notifications, the other runs reroutes).
"""

import argparse
import json
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

from bench.pipeline import usable_pairs, wait_for_end  # noqa: E402
from sparkbot_sandbox.state import SandboxState  # noqa: E402
from tests.support import Sandbox, Worker, database_url_in_use, timing_summary  # noqa: E402
from tests.webhook_receiver import ReceiverProcess  # noqa: E402


def submit_form(client, source: str, target: str) -> int:
    response = client.post("/reroute/", {"source": source, "target": target, "note": "bench",
                                         "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 302, response.content[:500]
    return int(response["Location"].strip("/").split("/")[-1])


def submit_api(client, token: str, source: str, target: str) -> int:
    response = client.post("/api/v1/reroutes", json.dumps({"source": source, "target": target, "note": "bench"}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
                           HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == 202, response.content[:500]
    return response.json()["id"]


def one_reroute(submit, sandbox: Sandbox, source: str, target: str) -> float:
    """The overhead of one reroute, in seconds."""
    from queues.models import Reroute

    sandbox.set_queue(source, pending=10, processing=0, scheduled=0)
    submitted = time.time()
    reroute = wait_for_end(Reroute, submit(source, target))
    assert reroute.status == "succeeded", reroute.error_message
    return reroute.ended_at.timestamp() - submitted - reroute.sparkbot_seconds


def form_beside_api(form, api, sandbox, pairs) -> tuple[list[float], list[float]]:
    by_form, by_api = [], []
    for n, (source, target) in enumerate(pairs):
        first, second = (form, api) if n % 2 == 0 else (api, form)  # neither always goes first
        for submit in (first, second):
            overhead = one_reroute(submit, sandbox, source, target)
            (by_form if submit is form else by_api).append(overhead)
    return by_form, by_api


def deliveries_at_once(receiver: ReceiverProcess, count: int):
    """Write `count` deliveries to the receiver's endpoint, then wake the sender; returns when (time.time())."""
    from queues import notify
    from queues.models import Delivery, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(name="bench receiver", url=receiver.url, secret=receiver.secret,
                                              events=["reroute.succeeded"])
    body = json.dumps({"type": "reroute.succeeded", "timestamp": "2026-11-25T00:00:00Z",
                       "data": {"reroute": {"id": 0, "message": "bench"}}})
    Delivery.objects.bulk_create(
        Delivery(message_id=f"msg_{uuid.uuid4().hex}", event_type="reroute.succeeded", about=f"Bench #{n}",
                 channel="webhook", endpoint=endpoint, destination=receiver.url, body=body,
                 next_attempt_at=endpoint.created_at) for n in range(count))
    started = time.time()
    notify.sender_wake()
    return started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reroutes", type=int, default=200, help="per path (form and API)")
    parser.add_argument("--deliveries", type=int, default=1000)
    args = parser.parse_args()

    sandbox = Sandbox(SandboxState(extra_devices=200))
    os.environ["SPARKBOT_API_URL"] = sandbox.api_url
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from queues import devices, notify, tokens
    from queues.models import Delivery
    from queues.roles import SUPPORT_LEAD, roles_ensure
    from sparkbot_dash.celery import app

    print(f"database: {connection.vendor}; broker: {settings.CELERY_BROKER_URL.split('://')[0]}; "
          f"sandbox latency 0 ms; worker: 1 process for reroutes, 1 for notifications", flush=True)
    setup_test_environment()
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    worker = Worker({**os.environ, "DATABASE_URL": database_url_in_use(), "SPARKBOT_API_URL": sandbox.api_url},
                    Path(tempfile.mkdtemp()) / "worker.log", concurrency=2)
    receiver = ReceiverProcess(secret=notify.webhook_secret_new())
    try:
        app.control.purge()
        worker.start()
        devices.device_list_forget()
        roles_ensure(Group, Permission)
        user = get_user_model().objects.create_user("bench", password="bench-password-123")
        user.groups.add(Group.objects.get(name=SUPPORT_LEAD))
        browser, script = Client(), Client()
        browser.force_login(user)
        token = tokens.token_create(owner=user, name="bench").secret
        settings.API_TOKEN_REQUESTS_PER_MINUTE = 10**9  # the bench measures the path, not the throttle
        form = lambda source, target: submit_form(browser, source, target)  # noqa: E731
        api = lambda source, target: submit_api(script, token, source, target)  # noqa: E731

        pairs = usable_pairs(devices.device_list(), args.reroutes)
        form_beside_api(form, api, sandbox, pairs[:10])  # warm-up, not counted
        by_form, by_api = form_beside_api(form, api, sandbox, pairs)
        print(f"reroute overhead, browser form: {timing_summary(by_form)}")
        print(f"reroute overhead, API:          {timing_summary(by_api)}")
        import statistics

        gap = (statistics.median(by_api) - statistics.median(by_form)) * 1000
        print(f"API minus form, p50: {gap:+.2f} ms", flush=True)

        before = [one_reroute(api, sandbox, s, t) for s, t in pairs[:50]]
        started = deliveries_at_once(receiver, args.deliveries)
        during, index = [], 0
        while Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() < args.deliveries:
            source, target = pairs[index % len(pairs)]
            during.append(one_reroute(api, sandbox, source, target))
            index += 1
            if time.time() - started > 600:
                raise RuntimeError("the deliveries did not end within 10 minutes")
        received = receiver.summary()
        seconds = received["last_at"] - started
        print(f"webhook deliveries: {received['calls']} ({args.deliveries} at once, the rest the events of the "
              f"reroutes meanwhile) in {seconds:.2f} s: {received['calls'] / seconds:.0f} deliveries/s; "
              f"{received['verified']} signatures verified")
        after = [one_reroute(api, sandbox, s, t) for s, t in pairs[:50]]
        print(f"API reroute overhead just before: {timing_summary(before)}")
        print(f"API reroute overhead while they were sent: {timing_summary(during)}")
        print(f"API reroute overhead just after: {timing_summary(after)}")
    finally:
        receiver.stop()
        worker.stop()
        connection.creation.destroy_test_db(test_db, verbosity=0)
        sandbox.stop()


if __name__ == "__main__":
    main()
