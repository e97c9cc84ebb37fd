"""The whole flow: the form, the broker, a real Celery worker process, the sandbox over HTTP.

Marked `embedded`: `make test` runs these on PostgreSQL + Redis and again on SQLite + the
filesystem broker that `make run` uses.
"""

import time
import uuid

import pytest

from queues.models import Reroute
from sparkbot_sandbox.seed import HTML_ALIAS_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def submit(client, source=SALES_3, target=SALES_4) -> Reroute:
    response = client.post("/reroute/", {"source": source, "target": target, "note": "flow",
                                         "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 302, response.content.decode()[:2000]
    return Reroute.objects.get(pk=int(response["Location"].strip("/").split("/")[-1]))


def wait_until_ended(reroute: Reroute, timeout: float = 30) -> Reroute:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reroute.refresh_from_db()
        if not reroute.is_active:
            return reroute
        time.sleep(0.05)
    raise AssertionError(f"reroute {reroute.pk} still {reroute.status}: {list(reroute.events.values_list('message', flat=True))}")


def test_it_reroutes_through_the_worker_and_the_page_shows_the_result(celery_worker, sandbox, lead_client):
    reroute = wait_until_ended(submit(lead_client))
    assert reroute.status == "succeeded" and reroute.messages_moved == 37
    assert sandbox.queue(SALES_3)["total"] == 0 and sandbox.queue(SALES_4)["total"] == 37
    fragment = lead_client.get(f"/reroutes/{reroute.pk}/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 286
    assert "Moved 37 messages from Sales-3 to Sales-4." in fragment.content.decode()


def test_it_retries_through_the_worker_until_sparkbot_answers(celery_worker, sandbox, lead_client):
    sandbox.fault(route="route_queue", status=500, times=2)
    reroute = wait_until_ended(submit(lead_client))
    assert reroute.status == "succeeded" and reroute.attempts == 3
    assert reroute.events.filter(kind="retry").count() == 2
    assert [c["status"] for c in sandbox.calls(method="PATCH")] == [500, 500, 200]


def test_it_fails_at_once_on_a_refused_api_key(celery_worker, sandbox, lead_client):
    lead_client.get("/reroute/")  # the device list is loaded before the key goes bad
    sandbox.fault(route="*", status=401, times=10)
    reroute = wait_until_ended(submit(lead_client, source=SALES_1, target=SALES_2))
    assert reroute.status == "failed" and reroute.attempts == 1
    assert reroute.error_message == "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY."


def test_it_ends_after_the_last_attempt_when_sparkbot_stays_down(celery_worker, sandbox, lead_client):
    sandbox.fault(route="queue_get", hang_seconds=1.5, times=10)
    reroute = wait_until_ended(submit(lead_client, source=HTML_ALIAS_DEVICE, target=SALES_4), timeout=60)
    assert reroute.status == "failed" and reroute.attempts == 4 and reroute.error_code == "timeout"
    assert reroute.error_message == "SparkBot did not answer within 1 seconds."


def test_it_runs_reroutes_of_different_sources_side_by_side(celery_worker, sandbox, lead_client):
    first = submit(lead_client, source=SALES_3, target=SALES_4)
    second = submit(lead_client, source=SALES_1, target=SALES_2)
    assert {wait_until_ended(r).messages_moved for r in (first, second)} == {37, 12}
