"""The API's handovers: the plans, running one (202, 409 naming the unfinished run), a run's progress."""

import pytest
from django.test import Client

from queues import handovers, services, tokens
from queues.models import HandoverPlan, HandoverRun, Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def call(manager, django_capture_on_commit_callbacks):
    raw = tokens.token_create(owner=manager, name="handovers").secret

    def send(method, path):
        with django_capture_on_commit_callbacks(execute=False):
            return Client().generic(method, path, HTTP_AUTHORIZATION=f"Bearer {raw}")

    return send


@pytest.fixture
def plan(sandbox):
    return handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_3, SALES_4), (SALES_1, SALES_2)],
                               user=None)


def test_it_lists_the_plans_with_their_moves(call, plan):
    body = call("GET", "/api/v1/handover-plans").json()
    assert body == [{"id": plan.pk, "name": "Evening", "schedule": "none", "next_run_at": None,
                     "pause_sources": False, "in_order": False, "unfinished_run": None,
                     "pairs": [{"position": 1, "source_id": SALES_3, "target_id": SALES_4},
                               {"position": 2, "source_id": SALES_1, "target_id": SALES_2}]}]


def test_it_starts_a_run_as_the_caller_and_refuses_a_second_while_it_goes(call, plan, manager):
    response = call("POST", f"/api/v1/handover-plans/{plan.pk}/runs")
    run = HandoverRun.objects.get()
    assert response.status_code == 202 and response["Location"] == f"http://testserver/api/v1/handover-runs/{run.pk}"
    assert run.started_by == manager and response.json()["result"]["done"] is False
    again = call("POST", f"/api/v1/handover-plans/{plan.pk}/runs")
    assert again.status_code == 409 and again.json()["active_run"]["id"] == run.pk
    assert again.json()["detail"] == (
        f"“Evening” was not started again: run #{run.pk} of this plan has not finished yet.")
    assert call("GET", "/api/v1/handover-plans").json()[0]["unfinished_run"] == run.pk
    assert call("POST", "/api/v1/handover-plans/999999/runs").status_code == 404


def test_it_shows_a_runs_progress_and_result(call, plan):
    run = handovers.handover_start(plan=plan, user=None)
    handovers.handover_advance(run_id=run.pk)
    for reroute in Reroute.objects.all():
        services.reroute_execute(reroute_id=reroute.pk)
    handovers.handover_advance(run_id=run.pk)
    body = call("GET", f"/api/v1/handover-runs/{run.pk}").json()
    assert body["progress"] == {"total": 2, "done": 2, "succeeded": 2, "failed": 0, "messages_moved": 49,
                                "percent": 100}
    assert body["result"] == {"ok": True, "done": True, "state": "finished",
                              "message": "“Evening” finished: 2 of 2 moves succeeded, 0 failed; 49 messages moved."}
    assert [item["reroute"]["status"] for item in body["items"]] == ["succeeded", "succeeded"]
