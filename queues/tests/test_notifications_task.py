"""Notifications through the real parts: reroutes started through the API and run by a real Celery worker,
webhooks sent by that worker to a receiver in this test that verifies each signature and answers 500
before it answers 200. A slow receiver never holds up a reroute.

A private redis-server is this module's broker and a worker runs on it with short retry delays
(NOTIFY_RETRY_DELAYS), so PostgreSQL + Redis only (make test-production).
"""

import json
import time

import pytest
from django.test import Client

from queues import notify, tokens
from queues.models import Delivery, Reroute, WebhookEndpoint
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)
NOTIFY_SETTINGS = {"NOTIFY_RETRY_DELAYS": "0.5,0.5,0.5", "NOTIFY_TICK_SECONDS": "1", "NOTIFY_TIMEOUT_SECONDS": "5"}


@pytest.fixture(scope="module")
def worker(worker_on_broker, sandbox_server):
    return worker_on_broker(sandbox_server.api_url, env=NOTIFY_SETTINGS, concurrency=2)


def hook(server: WebhookReceiver, events=("reroute.failed", "reroute.succeeded")) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name="test receiver", url=server.url, secret=server.secret,
                                          events=list(events))


def start_reroute(token: str, source: str, target: str) -> dict:
    response = Client().post("/api/v1/reroutes", json.dumps({"source": source, "target": target}),
                             content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 202, response.content
    return response.json()


def ended(pk: int, timeout: float = 30) -> Reroute:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reroute = Reroute.objects.get(pk=pk)
        if not reroute.is_active:
            return reroute
        time.sleep(0.01)
    raise AssertionError(f"reroute {pk} did not end")


def test_it_signs_the_webhook_and_retries_after_500_until_the_receiver_takes_it(worker, sandbox, lead, receiver):
    server = receiver(secret=notify.webhook_secret_new(), answers=[500, 500])
    hook(server)
    token = tokens.token_create(owner=lead, name="n8n").secret
    reroute = ended(start_reroute(token, "Sales-3", "Sales-4")["id"])
    calls = server.wait_for(3)
    assert [c.answered for c in calls] == [500, 500, 200] and all(c.verified for c in calls)
    assert len({c.headers["webhook-id"] for c in calls}) == 1
    assert calls[0].payload["data"]["reroute"]["id"] == reroute.pk
    assert calls[0].payload["data"]["reroute"]["origin"] == "api"
    assert calls[1].at - calls[0].at >= 0.45 and calls[2].at - calls[1].at >= 0.45  # the retry delays
    delivery = Delivery.objects.get()
    deadline = time.monotonic() + 10
    while delivery.status != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.05)
        delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 3
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 500, 200]


def test_it_never_holds_up_a_reroute_for_a_slow_receiver(worker, sandbox, lead, receiver):
    server = receiver(secret=notify.webhook_secret_new(), delay=3)  # each answer takes 3 s
    hook(server)
    token = tokens.token_create(owner=lead, name="n8n").secret
    took = []
    for source, target in [(SALES_3, SALES_4), (SALES_1, SALES_2), (SALES_4, SALES_3)]:
        started = time.monotonic()
        ended(start_reroute(token, source, target)["id"])
        took.append(time.monotonic() - started)
    assert max(took) < 1.5, took  # each ended long before its webhook was answered
    assert len(server.wait_for(3, timeout=30)) == 3
