"""SparkBot's webhook: it refuses a wrong secret, answers fast, is rate limited, and nudges an immediate
failover through a real worker (whose monitor reads the device list only every ten minutes here)."""

import json
import time

import pytest
from django.urls import reverse

from queues.models import Reroute, Rule
from queues.views.hooks import named_device
from sparkbot_sandbox.seed import SALES_1, SALES_4

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "hook-secret-0123456789-abcdef"
SLOW_WALKS = {"MONITOR_CYCLE_SECONDS": "1", "MONITOR_DEVICES_SECONDS": "600", "MONITOR_CALLS_PER_MINUTE": "6000",
              "RULES_MINUTE_SECONDS": "1", "SPARKBOT_WEBHOOK_SECRET": SECRET}


@pytest.fixture(scope="module")
def worker(worker_on_broker, sandbox_server):
    return worker_on_broker(sandbox_server.api_url, env=SLOW_WALKS, beat=True)


@pytest.fixture
def hook(settings):
    settings.SPARKBOT_WEBHOOK_SECRET = SECRET
    settings.SPARKBOT_WEBHOOK_PER_MINUTE = 60
    return reverse("queues:sparkbot_hook", args=[SECRET])


def post(client, url: str, payload) -> object:
    return client.post(url, json.dumps(payload), content_type="application/json")


def test_it_refuses_a_wrong_secret_and_is_off_without_one(client, hook, settings):
    assert post(client, reverse("queues:sparkbot_hook", args=["x" * len(SECRET)]), {}).status_code == 404
    settings.SPARKBOT_WEBHOOK_SECRET = ""
    assert post(client, hook, {}).status_code == 404


def test_it_limits_how_many_calls_a_minute_it_acts_on(client, hook, settings, worker):
    settings.SPARKBOT_WEBHOOK_PER_MINUTE = 3
    from django.core.cache import cache

    cache.clear()
    answers = [post(client, hook, {"event": "ping"}).status_code for _ in range(5)]
    assert answers[:3] == [202, 202, 202] and answers[3:] == [429, 429]
    assert int(post(client, hook, {}).headers["Retry-After"]) <= 60


def test_it_takes_a_device_id_from_any_payload_as_a_hint_only():
    assert named_device(json.dumps({"event": "number:session", "data": {"device": {"id": SALES_1}}}).encode()) \
        == SALES_1
    assert named_device(json.dumps({"deviceId": SALES_4, "status": "offline"}).encode()) == SALES_4
    assert named_device(json.dumps({"id": SALES_1}).encode()) is None  # a message's id is no device
    assert named_device(b"<html>not json</html>") is None


def test_it_nudges_an_immediate_failover(client, hook, worker, sandbox, manager, settings):
    from django.core.cache import cache

    cache.clear()
    settings.RULES_MINUTE_SECONDS = 1
    rule = Rule.objects.create(name="Webhook failover", owner=manager, owner_username="manager", enabled=True,
                               dry_run=False, sources=[SALES_1], targets=[SALES_4], minutes=0)
    time.sleep(2)  # the monitor has walked the list once and reads queues every second
    sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    time.sleep(2)
    assert not Reroute.objects.exists()  # the monitor's own walk is ten minutes away
    started = time.monotonic()
    answered = post(client, hook, {"event": "number:session", "data": {"device": {"id": SALES_1}}})
    assert answered.status_code == 202 and time.monotonic() - started < 0.5
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not Reroute.objects.filter(rule=rule, status="succeeded").exists():
        time.sleep(0.05)
    took = time.monotonic() - started
    assert Reroute.objects.filter(rule=rule, status="succeeded").exists(), "no failover after the webhook"
    assert took < 3 and sandbox.queue(SALES_4)["total"] == 12
