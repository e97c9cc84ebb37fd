"""The fault suite: faults really injected into the real parts, and each reroute ends exactly once.

A private redis-server is this module's broker, so that a test may stop it; a real Celery
worker with beat (the sweeper's clock) runs on it, on the test database, against the
sandbox over HTTP. Each test asserts the end state, the events, and the sandbox's record
of route calls. docs/RELIABILITY.md is the table of these faults.
"""

import time
import uuid

import pytest
from queues.models import Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = pytest.mark.django_db(transaction=True)
FAULT_SETTINGS = {  # on top of tests.support.WORKER_SETTINGS
    "SPARKBOT_TIMEOUT": "1.5",
    "SPARKBOT_RETRY_MAX_SECONDS": "1.5",
    "REROUTE_STUCK_AFTER_SECONDS": "14",  # the least the settings allow with these limits
    "REROUTE_REQUEUE_AFTER_SECONDS": "1",
    "REROUTE_SWEEP_SECONDS": "1",
}


@pytest.fixture(scope="module")
def worker(worker_on_broker, sandbox_server):
    return worker_on_broker(sandbox_server.api_url, env=FAULT_SETTINGS, beat=True)


def submit(client, source=SALES_3, target=SALES_4) -> Reroute:
    response = client.post("/reroute/", {"source": source, "target": target, "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 302, response.content.decode()[:2000]
    return Reroute.objects.get(pk=int(response["Location"].strip("/").split("/")[-1]))


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def ended(reroute: Reroute, timeout: float = 30) -> Reroute:
    def check():
        reroute.refresh_from_db()
        return not reroute.is_active

    wait_for(check, timeout, f"reroute {reroute.pk} to end; events: {messages(reroute)}")
    return reroute


def messages(reroute: Reroute, kind: str | None = None) -> list[str]:
    events = reroute.events.all() if kind is None else reroute.events.filter(kind=kind)
    return list(events.values_list("message", flat=True))


def route_calls(sandbox) -> list[int]:
    return [call["status"] for call in sandbox.calls(method="PATCH")]


def test_it_retries_sparkbot_500_three_times_then_succeeds(worker, sandbox, lead_client):
    sandbox.fault(route="route_queue", status=500, times=3)
    reroute = ended(submit(lead_client))
    assert (reroute.status, reroute.attempts, reroute.messages_moved) == ("succeeded", 4, 37)
    retries = messages(reroute, "retry")
    assert len(retries) == 3 and retries[0].startswith("SparkBot did not answer (500). Retrying in")
    assert [f"(attempt {n} of 4)" in m for n, m in zip((2, 3, 4), retries)] == [True] * 3
    assert route_calls(sandbox) == [500, 500, 500, 200]


def test_it_waits_as_long_as_retry_after_says(worker, sandbox, lead_client):
    sandbox.fault(route="route_queue", status=429, times=1, retry_after="1")
    reroute = ended(submit(lead_client))
    assert (reroute.status, reroute.attempts) == ("succeeded", 2)
    assert messages(reroute, "retry")[0].startswith("SparkBot is rate limiting this API key (429). Retrying in 1.0 s")
    first, second = sandbox.calls(method="PATCH")
    assert second["at"] - first["at"] >= 1.0


def test_it_retries_a_call_hanging_past_the_timeout(worker, sandbox, lead_client):
    sandbox.fault(route="queue_get", hang_seconds=3, times=1)
    reroute = ended(submit(lead_client))
    assert (reroute.status, reroute.attempts, reroute.messages_moved) == ("succeeded", 2, 37)
    assert messages(reroute, "retry")[0].startswith("SparkBot did not answer within 1.5 seconds.")
    assert route_calls(sandbox) == [200]


def test_it_retries_while_sparkbot_refuses_connections_and_succeeds_when_it_is_back(worker, sandbox, lead_client):
    lead_client.get("/reroute/")  # the device list was loaded before SparkBot went away
    sandbox.stop()
    try:
        reroute = submit(lead_client)
        wait_for(lambda: reroute.events.filter(kind="retry").exists(), 10, "a retry")
    finally:
        sandbox.start()
    reroute = ended(reroute)
    assert reroute.status == "succeeded" and reroute.messages_moved == 37
    assert messages(reroute, "retry")[0].startswith("SparkBot could not be reached (connection failed).")
    assert route_calls(sandbox) == [200]


def test_it_fails_at_once_on_a_refused_api_key(worker, sandbox, lead_client):
    lead_client.get("/reroute/")
    sandbox.fault(route="*", status=401, times=20)
    reroute = ended(submit(lead_client))
    assert (reroute.status, reroute.attempts, reroute.error_code) == ("failed", 1, "unauthorized")
    assert reroute.error_message == "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY."
    assert messages(reroute, "retry") == [] and route_calls(sandbox) == []


def test_it_fails_at_once_when_the_number_is_gone(worker, sandbox, lead_client):
    lead_client.get("/reroute/")
    sandbox.control("POST", f"/devices/{SALES_3}/remove")
    reroute = ended(submit(lead_client))
    assert (reroute.status, reroute.attempts, reroute.error_code) == ("failed", 1, "device_not_found")
    assert reroute.error_message == "Sales-3 (+447700900003) is no longer a SparkBot device; refresh the device list."
    assert route_calls(sandbox) == []


def test_it_starts_a_reroute_submitted_while_the_broker_was_down_once_it_is_back(worker, broker, sandbox, lead_client):
    lead_client.get("/reroute/")
    broker.stop()
    try:
        response = lead_client.post("/reroute/", {"source": SALES_3, "target": SALES_4,
                                                  "idempotency_key": str(uuid.uuid4())}, follow=True)
    finally:
        broker.start()
    reroute = Reroute.objects.get()
    assert "the task queue is not answering: it will start by itself when the queue is back" in response.content.decode()
    assert reroute.events.filter(kind="queue_down").exists()
    reroute = ended(reroute)  # beat's sweeper hands it to the queue again
    assert reroute.status == "succeeded" and reroute.messages_moved == 37
    assert messages(reroute, "recovered") == ["Handed to the task queue again: it had not started."]
    assert route_calls(sandbox) == [200]


def test_it_recovers_a_reroute_whose_worker_was_killed_mid_call_without_routing_twice(worker, sandbox, lead_client):
    sandbox.fault(route="route_queue", hang_seconds=1.2, times=1)  # SparkBot routes, but answers late
    reroute = submit(lead_client)
    wait_for(lambda: sandbox.calls(method="GET", path_contains="/queue") and reroute.events.filter(
        kind="call", message__contains="read the queue of the source").exists(), 10, "the route call to begin")
    time.sleep(0.3)  # inside the route call
    worker.kill()
    time.sleep(1.5)  # SparkBot finished routing after the worker died
    assert sandbox.queue(SALES_3)["total"] == 0
    worker.start()
    reroute = ended(reroute, timeout=40)  # the sweeper waits REROUTE_STUCK_AFTER_SECONDS of silence
    assert (reroute.status, reroute.messages_moved, reroute.attempts) == ("succeeded", 37, 2)
    recovered = messages(reroute, "recovered")
    assert recovered[0].startswith("Attempt 1 gave no sign of life for 14 s (its worker died or hung).")
    assert recovered[1].startswith("The queue of Sales-3 is empty now: the route call of an earlier")
    assert len(sandbox.calls(method="PATCH")) == 1  # routed once, and the record says why no second time


def test_it_keeps_other_sources_moving_while_one_retries(worker, sandbox, lead_client):
    sandbox.fault(route="route_queue", status=503, times=2, device=SALES_3)
    slow = submit(lead_client, source=SALES_3, target=SALES_4)
    quick = submit(lead_client, source=SALES_1, target=SALES_2)
    assert ended(quick).messages_moved == 12
    assert ended(slow).messages_moved == 37 and slow.attempts == 3
