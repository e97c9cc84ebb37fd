"""An n8n-style workflow against the running dashboard, over HTTP, with a real Celery worker and the sandbox:
POST a reroute (HTTP Request node), poll its Location until `result.done` (Wait + IF loop), then branch
on `result.ok` (IF node). Marked `embedded`: it runs on PostgreSQL + Redis and on SQLite + the
filesystem broker."""

import time
import uuid

import httpx
import pytest

from queues import tokens
from queues.models import Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def workflow(base_url: str, token: str, *, source: str, target: str, note: str) -> tuple[str, dict, int]:
    """What an n8n workflow does; returns the branch it took, the last result, and how many polls."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"n8n-execution-{uuid.uuid4()}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as http:
        started = http.post("/api/v1/reroutes", json={"source": source, "target": target, "note": note})
        assert started.status_code == 202, started.text
        location, polls = started.headers["Location"], 0
        result = started.json()["result"]
        deadline = time.monotonic() + 30
        while not result["done"] and time.monotonic() < deadline:
            time.sleep(0.1)
            polls += 1
            result = http.get(location).json()["result"]
    branch = "done" if result["ok"] else ("alert: " + result["error_code"])
    return branch, result, polls


def test_it_carries_a_workflow_to_its_success_branch(celery_worker, sandbox, live_server, lead):
    token = tokens.token_create(owner=lead, name="n8n").secret
    branch, result, _polls = workflow(live_server.url, token, source="Sales-3", target="Sales-4", note="n8n: night")
    assert branch == "done"
    assert result == {"ok": True, "done": True, "state": "succeeded", "messages_moved": 37, "error_code": "",
                      "message": "Moved 37 messages from Sales-3 to Sales-4."}
    reroute = Reroute.objects.get()
    assert reroute.origin == "api" and reroute.requested_by_username == "lead" and reroute.note == "n8n: night"
    assert sandbox.queue(SALES_4)["total"] == 37


def test_it_carries_a_workflow_to_its_alert_branch_when_sparkbot_refuses(celery_worker, sandbox, live_server, lead):
    token = tokens.token_create(owner=lead, name="n8n").secret
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/api/v1/numbers").status_code == 200
    from queues import devices

    devices.device_list()  # the list is loaded before the key goes bad
    sandbox.fault(route="*", status=401, times=10)
    branch, result, _polls = workflow(live_server.url, token, source=SALES_1, target=SALES_2, note="n8n")
    assert branch == "alert: unauthorized" and result["state"] == "failed" and result["messages_moved"] is None
    assert result["message"] == "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY."


def test_it_gives_a_retried_workflow_step_the_same_reroute(celery_worker, sandbox, live_server, lead):
    """n8n retries a failed HTTP node with the same Idempotency-Key: no second reroute."""
    token = tokens.token_create(owner=lead, name="n8n").secret
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "n8n-execution-42-node-3"}
    with httpx.Client(base_url=live_server.url, headers=headers) as http:
        first = http.post("/api/v1/reroutes", json={"source": SALES_3, "target": SALES_4})
        retried = http.post("/api/v1/reroutes", json={"source": SALES_3, "target": SALES_4})
    assert first.status_code == retried.status_code == 202
    assert first.headers["Location"] == retried.headers["Location"] and Reroute.objects.count() == 1
