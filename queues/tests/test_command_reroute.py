"""manage.py reroute: names resolved against the device list, progress while it waits, the exit status,
origin cli in the audit log; against the sandbox with a real Celery worker (marked `embedded`)."""

import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from queues import devices
from queues.models import Reroute
from sparkbot_sandbox.seed import OFFLINE_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4
from tests.support import ROOT, WORKER_SETTINGS, database_url_in_use

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def reroute(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("reroute", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_it_reroutes_from_the_shell_waits_with_progress_and_prints_json(celery_worker, sandbox):
    env = {**os.environ, **WORKER_SETTINGS, "DATABASE_URL": database_url_in_use(),
           "SPARKBOT_API_URL": sandbox.api_url}
    done = subprocess.run([sys.executable, "manage.py", "reroute", "Sales-3", "+44 7700 900004", "--note", "night",
                           "--wait", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["result"] == {"ok": True, "done": True, "state": "succeeded", "messages_moved": 37, "error_code": "",
                                "message": "Moved 37 messages from Sales-3 to Sales-4."}
    assert report["origin"] == "cli" and report["counts"]["before"]["total"] == 37
    assert "Reroute #" in done.stderr and "asked to move the queue of Sales-3" in done.stderr  # progress
    assert "Moved 37 messages" in done.stderr
    assert "WARNING" not in done.stderr  # e.g. kombu's "No hostname was supplied" in the --json progress
    stored = Reroute.objects.get()
    assert stored.origin == "cli" and stored.requested_by is None and stored.requested_by_username.startswith("cli")
    assert stored.note == "night"


def test_it_exits_1_with_the_reason_when_the_reroute_fails(celery_worker, sandbox):
    devices.device_list()
    sandbox.fault(route="*", status=401, times=10)
    with pytest.raises(SystemExit) as exit_status:
        reroute(SALES_1, SALES_2, "--wait")
    assert exit_status.value.code == 1
    assert Reroute.objects.get().error_message == (
        "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY.")


def test_it_starts_without_waiting_and_records_the_user_it_is_told(celery_worker, sandbox, lead):
    out = reroute("sales-1", "sales-2", "--user", "lead")
    stored = Reroute.objects.get()
    assert f"Reroute #{stored.pk}: Sales-1 (+447700900001) → Sales-2 (+447700900002), queued." in out
    assert stored.requested_by == lead and stored.origin == "cli"


def test_it_starts_one_reroute_for_one_key_however_often_it_runs(celery_worker, sandbox):
    reroute(SALES_3, SALES_4, "--key", "cron-2026-11-25")
    reroute(SALES_3, SALES_4, "--key", "cron-2026-11-25")
    assert Reroute.objects.count() == 1


@pytest.mark.parametrize("source, target, words", [
    ("Sales", SALES_4, ["No number is called “Sales”; did you mean one of these?", SALES_1, "Sales-3"]),
    ("Nobody", SALES_4, ["No number in SparkBot's device list is called “Nobody”"]),
    (SALES_3, SALES_3, ["target: Choose a target number different from the source number."]),
    (SALES_3, "Billing Desk", ["cannot receive a queue"]),
])
def test_it_refuses_with_exit_2_and_lists_the_candidates(sandbox, source, target, words):
    with pytest.raises(CommandError) as refused:
        reroute(source, target)
    assert refused.value.returncode == 2
    for word in words:
        assert word in str(refused.value)
    assert Reroute.objects.count() == 0


def test_it_refuses_an_ambiguous_alias_with_every_number_it_could_mean(sandbox):
    sandbox.control("POST", f"/devices/{SALES_2}", {"alias": "Sales-1"})
    with pytest.raises(CommandError, match="“Sales-1” names 2 numbers") as refused:
        reroute("Sales-1", SALES_4)
    assert SALES_1 in str(refused.value) and SALES_2 in str(refused.value)


def test_it_names_the_reroute_in_progress_for_a_busy_source(celery_worker, sandbox):
    sandbox.fault(route="queue_get", hang_seconds=0.5, times=1)  # the first stays running a while
    reroute(SALES_3, SALES_4)
    with pytest.raises(CommandError, match=r"Sales-3 is already being rerouted: reroute #\d+ is (queued|running)"):
        reroute(SALES_3, OFFLINE_DEVICE)


def test_it_refuses_an_unknown_user(sandbox):
    with pytest.raises(CommandError, match="There is no active dashboard user called “ghost”."):
        reroute(SALES_3, SALES_4, "--user", "ghost")


def test_it_refuses_a_user_whose_roles_do_not_let_them_reroute(sandbox, make_user):
    make_user("viewer", None)
    with pytest.raises(CommandError, match="“viewer” may not reroute queues: no role of theirs allows it.") as no:
        reroute(SALES_3, SALES_4, "--user", "viewer")
    assert no.value.returncode == 2 and Reroute.objects.count() == 0


def test_it_answers_a_command_run_again_with_its_key_though_a_number_has_changed_since(sandbox):
    first = reroute("Sales-3", "Sales-4", "--key", "cron-2026-12-04")
    sandbox.control("POST", f"/devices/{SALES_4}", {"status": "disabled"})
    devices.device_list_forget()
    again = reroute(SALES_3, "+44 7700 900004", "--key", "cron-2026-12-04")
    said = [out.split(":")[0] for out in (first, again)]  # "Reroute #N"
    assert Reroute.objects.count() == 1 and said[0] == said[1] == f"Reroute #{Reroute.objects.get().pk}"
    with pytest.raises(CommandError) as reused:
        reroute(SALES_3, SALES_1, "--key", "cron-2026-12-04")
    assert reused.value.returncode == 2 and str(reused.value) == (
        "The key “cron-2026-12-04” was already used for another reroute; give a new --key for a new one.")


@pytest.mark.parametrize("seconds", ["-5", "0", "nan", "inf", "soon"])
def test_it_refuses_a_timeout_that_is_not_a_number_of_seconds(celery_worker, sandbox, seconds):
    with pytest.raises(CommandError, match="--timeout: give a number of seconds above 0"):
        reroute(SALES_3, SALES_4, "--wait", "--timeout", seconds)
    assert Reroute.objects.count() == 0


def test_it_says_when_the_device_list_did_not_load_in_time(sandbox, settings):
    settings.SPARKBOT_DEVICE_WAIT_SECONDS = 0.3
    sandbox.fault(route="devices_list", hang_seconds=0.6, times=1)  # within SPARKBOT_TIMEOUT (1 s here)
    with pytest.raises(CommandError) as refused:
        reroute(SALES_3, SALES_4)
    assert refused.value.returncode == 2 and str(refused.value) == (
        "SparkBot's device list did not load within 0.3 s: SparkBot is slow or not answering. "
        "Try again in a moment.")
    assert Reroute.objects.count() == 0
    devices.device_list_refresh()  # waits for the walk still going: the next test must not count it
