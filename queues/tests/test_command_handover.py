"""manage.py handover PLAN --wait: a plan run from the shell with a real Celery worker and the sandbox, its
progress while it waits, and its exit status (marked `embedded`)."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from queues import devices, handovers
from queues.models import HandoverPlan, HandoverRun
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def handover(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("handover", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def plan(sandbox):
    return handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_3, SALES_4), (SALES_1, SALES_2)],
                               user=None)


def test_it_runs_a_plan_by_name_shows_each_move_and_exits_0(celery_worker, plan, manager):
    out, _err = handover("Evening", "--user", "manager", "--wait")
    run = HandoverRun.objects.get()
    assert run.started_by == manager and run.status == "finished"
    assert f"Handover “Evening”: run #{run.pk} started, 2 moves." in out
    assert "Sales-3 → Sales-4: Moved 37 messages from Sales-3 to Sales-4." in out
    assert "Sales-1 → Sales-2: Moved 12 messages from Sales-1 to Sales-2." in out
    assert out.rstrip().endswith("“Evening” finished: 2 of 2 moves succeeded, 0 failed; 49 messages moved.")


def test_it_exits_1_when_a_move_fails_and_prints_json(celery_worker, plan, manager, sandbox):
    devices.device_list()
    sandbox.fault(route="*", status=401, times=20)
    with pytest.raises(SystemExit) as exit_status:
        call_command("handover", str(plan.pk), "--user", "manager", "--wait", "--json", stdout=(out := StringIO()),
                     stderr=StringIO())
    assert exit_status.value.code == 1
    report = json.loads(out.getvalue())
    assert report["result"]["ok"] is False and report["result"]["done"] is True
    assert report["progress"]["failed"] == 2


def test_it_refuses_an_unknown_plan_or_a_second_run(celery_worker, plan, manager, sandbox):
    with pytest.raises(CommandError, match="There is no handover plan called “Morning”. Plans: “Evening”.") as refused:
        handover("Morning", "--user", "manager")
    assert refused.value.returncode == 2
    sandbox.fault(route="queue_get", hang_seconds=0.5, times=1)  # the run stays unfinished a while
    handover("Evening", "--user", "manager")
    with pytest.raises(CommandError, match="“Evening” was not started again: run #"):
        handover("Evening", "--user", "manager")


def test_it_refuses_a_user_whose_roles_do_not_let_them_run_handovers(plan, lead):
    with pytest.raises(CommandError, match="“lead” may not run shift handovers: no role of theirs allows it.") as no:
        handover("Evening", "--user", "lead")
    assert no.value.returncode == 2 and HandoverRun.objects.count() == 0


def test_it_counts_each_move_as_it_ends_while_it_waits(celery_worker, plan, manager, sandbox):
    sandbox.set_latency(150)  # both moves end between two looks
    out, _err = handover("Evening", "--user", "manager", "--wait")
    counted = [line.split()[0] for line in out.splitlines() if "→" in line]
    assert counted == ["1/2", "2/2"], out
