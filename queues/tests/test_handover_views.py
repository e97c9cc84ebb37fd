"""Handover plans in the browser's terms: the forms, their messages, copy, delete, run, the run page."""

import re

import pytest

from queues import handovers
from queues.models import HandoverPlan, HandoverRun
from sparkbot_sandbox.seed import DISABLED_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def plan_form(pairs, *, name="Night to Day", total=None, **fields) -> dict:
    data = {"name": name, "schedule": "none", "time_zone": "UTC", "pairs-TOTAL_FORMS": str(total or len(pairs)),
            "pairs-INITIAL_FORMS": "0", "pairs-MIN_NUM_FORMS": "0", "pairs-MAX_NUM_FORMS": "1000", **fields}
    for n, (source, target) in enumerate(pairs):
        data[f"pairs-{n}-source"], data[f"pairs-{n}-target"] = source, target
    return data


def test_it_creates_a_plan_from_pairs_of_numbers(manager_client, sandbox, manager):
    page = manager_client.get("/handovers/plans/new/")
    assert page.status_code == 200 and page.content.decode().count('list="numbers" data-picker') == 5 * 2 + 1
    response = manager_client.post("/handovers/plans/new/", plan_form(
        [(SALES_1, SALES_4), (SALES_3, SALES_4), ("", "")], pause_sources="on"))
    assert response.status_code == 302 and response["Location"] == "/handovers/"
    plan = HandoverPlan.objects.get()
    assert (plan.name, plan.pause_sources, plan.created_by) == ("Night to Day", True, manager)
    assert list(plan.pairs.values_list("position", "source_id", "target_id")) == [
        (1, SALES_1, SALES_4), (2, SALES_3, SALES_4)]


@pytest.mark.parametrize("pairs, extra, message", [
    ([(SALES_1, SALES_1)], {}, "A number cannot hand its queue to itself."),
    ([(SALES_1, SALES_4), (SALES_1, SALES_2)], {}, "appears as a source more than once"),
    ([(SALES_1, SALES_4), (SALES_1, SALES_2), (SALES_3, SALES_4), (SALES_3, SALES_2)], {},
     "appear as sources more than once: a number hands its queue over once per plan."),
    ([(SALES_1, SALES_2), (SALES_2, SALES_3)], {}, "both receives and hands over a queue"),
    ([(SALES_1, "")], {}, "Choose both numbers of the pair, or neither."),
    ([("65a000000000000000000999", SALES_4)], {}, "no longer in SparkBot&#x27;s device list"),
    ([(SALES_1, DISABLED_DEVICE)], {}, "cannot receive a queue"),
    ([("", "")], {}, "Add at least one pair of numbers."),
    ([(SALES_1, SALES_4)], {"schedule": "daily"}, "Give the time of day to run this plan."),
    ([(SALES_1, SALES_4)], {"schedule": "once", "run_at": "2001-01-01T06:00"}, "This time has passed"),
])
def test_it_explains_what_is_wrong_with_a_plan_and_saves_nothing(manager_client, sandbox, pairs, extra, message):
    response = manager_client.post("/handovers/plans/new/", plan_form(pairs, **extra))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not HandoverPlan.objects.exists()


def test_it_accepts_a_chain_when_the_plan_runs_in_order(manager_client, sandbox):
    response = manager_client.post("/handovers/plans/new/", plan_form([(SALES_2, SALES_3), (SALES_1, SALES_2)],
                                                                      in_order="on"))
    assert response.status_code == 302 and HandoverPlan.objects.get().in_order


def test_it_schedules_a_daily_plan_in_its_time_zone(manager_client, sandbox):
    manager_client.post("/handovers/plans/new/", plan_form([(SALES_1, SALES_4)], schedule="daily",
                                                           daily_time="06:30", time_zone="Asia/Tokyo"))
    plan = HandoverPlan.objects.get()
    local = plan.next_run_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (6, 30)


def test_it_adds_rows_without_saving(manager_client, sandbox):
    response = manager_client.post("/handovers/plans/new/", plan_form([(SALES_1, SALES_4)], op="more"))
    html = response.content.decode()
    assert response.status_code == 200 and not HandoverPlan.objects.exists()
    assert 'name="pairs-10-source"' in html and f'name="pairs-0-source" value="{SALES_1}"' in html


def test_it_edits_copies_and_deletes_a_plan(manager_client, sandbox, manager):
    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_1, SALES_4)], user=manager)
    page = manager_client.get(f"/handovers/plans/{plan.pk}/").content.decode()
    assert 'name="pairs-0-source" value="Sales-1"' in page and 'name="pairs-0-target" value="Sales-4"' in page
    manager_client.post(f"/handovers/plans/{plan.pk}/", plan_form([(SALES_3, SALES_4)], name="Evening shift",
                                                                   total=1))
    plan.refresh_from_db()
    assert plan.name == "Evening shift" and list(plan.pairs.values_list("source_id", flat=True)) == [SALES_3]
    copy_response = manager_client.post(f"/handovers/plans/{plan.pk}/copy/")
    copy = HandoverPlan.objects.get(name="Copy of Evening shift")
    assert copy_response["Location"] == f"/handovers/plans/{copy.pk}/"
    assert list(copy.pairs.values_list("source_id", "target_id")) == [(SALES_3, SALES_4)]
    assert "Delete “Evening shift”?" in manager_client.get(f"/handovers/plans/{plan.pk}/delete/").content.decode()
    manager_client.post(f"/handovers/plans/{plan.pk}/delete/")
    assert list(HandoverPlan.objects.values_list("name", flat=True)) == ["Copy of Evening shift"]


def test_it_runs_a_plan_and_shows_its_live_page(manager_client, sandbox, manager, django_capture_on_commit_callbacks):
    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_1, SALES_4), (SALES_3, SALES_2)],
                               user=manager)
    with django_capture_on_commit_callbacks(execute=False):
        response = manager_client.post(f"/handovers/plans/{plan.pk}/run/")
    run = HandoverRun.objects.get()
    assert response["Location"] == f"/handovers/runs/{run.pk}/"
    page = manager_client.get(f"/handovers/runs/{run.pk}/").content.decode()
    assert "0 of 2 moves done" in page and 'hx-trigger="every 1s"' in page and "Cancel the rest" in page
    handovers.handover_cancel(run=run, user=manager)
    with django_capture_on_commit_callbacks(execute=True):
        handovers.handover_advance(run_id=run.pk)
    fragment = manager_client.get(f"/handovers/runs/{run.pk}/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 286 and b"Cancelled by manager." in fragment.content


def test_it_does_not_start_a_second_run_of_a_plan_that_has_not_finished(manager_client, sandbox, manager,
                                                                        django_capture_on_commit_callbacks):
    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_1, SALES_4)], user=manager)
    with django_capture_on_commit_callbacks(execute=False):
        first = manager_client.post(f"/handovers/plans/{plan.pk}/run/")
        second = manager_client.post(f"/handovers/plans/{plan.pk}/run/", follow=True)
    run = HandoverRun.objects.get()
    assert first["Location"] == second.redirect_chain[-1][0] == f"/handovers/runs/{run.pk}/"
    assert f"“Evening” was not started again: run #{run.pk} of this plan has not finished yet." in \
        second.content.decode()


def test_it_refreshes_a_running_run_page_without_javascript_and_announces_only_its_end(
        manager_client, sandbox, manager, django_capture_on_commit_callbacks):
    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_1, SALES_4)], user=manager)
    with django_capture_on_commit_callbacks(execute=False):
        run = handovers.handover_start(plan=plan, user=manager)
    page = manager_client.get(f"/handovers/runs/{run.pk}/").content.decode()
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page.split("</head>")[0]
    assert f'<a href="/handovers/runs/{run.pk}/">Reload now</a>' in page
    assert '<div id="run-announcer" class="visually-hidden" role="status"></div>' in page
    polled = manager_client.get(f"/handovers/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "aria-live" not in polled and "run-announcer" not in polled
    handovers.handover_cancel(run=run, user=manager)
    with django_capture_on_commit_callbacks(execute=True):
        handovers.handover_advance(run_id=run.pk)
    ended = manager_client.get(f"/handovers/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert ('<div hx-swap-oob="innerHTML:#run-announcer">Handover cancelled: 1 of 1 moves done, 0 succeeded, '
            '0 failed, 0 messages moved.</div>') in ended
    page = manager_client.get(f"/handovers/runs/{run.pk}/").content.decode()
    assert 'http-equiv="refresh"' not in page and "Reload now" not in page


def test_it_labels_the_next_run_with_the_time_zone_it_is_shown_in(manager_client, sandbox, manager, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    plan = HandoverPlan(name="Daily", schedule="daily", daily_time=__import__("datetime").time(6, 30),
                        time_zone="Asia/Tokyo")
    handovers.plan_save(plan=plan, pairs=[(SALES_1, SALES_4)], user=manager)
    html = manager_client.get("/handovers/").content.decode()
    assert re.search(r'<time datetime="[^"]+">\d+ \w+ \d{4} 06:30 JST</time>', html)
    assert " UTC</time>" not in html


def test_it_saves_a_plan_whose_one_time_run_has_passed_as_long_as_that_time_is_left_as_it_was(
        manager_client, sandbox):
    from datetime import timedelta

    from django.utils import timezone

    manager_client.post("/handovers/plans/new/", plan_form([(SALES_1, SALES_4)], schedule="once",
                                                           run_at="2999-01-01T06:00"))
    plan = HandoverPlan.objects.get()
    passed = (timezone.now() - timedelta(hours=1)).replace(second=0, microsecond=0)
    HandoverPlan.objects.filter(pk=plan.pk).update(run_at=passed, next_run_at=None)  # it ran an hour ago
    kept = plan_form([(SALES_1, SALES_4)], name="Night to Day, renamed", schedule="once",
                     run_at=f"{passed:%Y-%m-%dT%H:%M}")
    response = manager_client.post(f"/handovers/plans/{plan.pk}/", kept)
    assert response.status_code == 302, re.findall(r'class="error[^"]*"[^>]*>([^<]+)', response.content.decode())
    plan.refresh_from_db()
    assert plan.name == "Night to Day, renamed" and plan.run_at == passed and plan.next_run_at is None
    listed = manager_client.get("/handovers/").content.decode()
    when = f'<time datetime="{passed.isoformat()}">{passed.day} {passed:%b %Y %H:%M} UTC</time>'
    assert f"Once, at a date and time: {when}" in listed  # when it ran, not only "Next run —"
    moved = plan_form([(SALES_1, SALES_4)], schedule="once", run_at=f"{passed - timedelta(hours=1):%Y-%m-%dT%H:%M}")
    assert "This time has passed" in manager_client.post(f"/handovers/plans/{plan.pk}/", moved).content.decode()


def test_the_list_of_runs_says_how_many_moves_failed(manager_client, sandbox, manager,
                                                     django_capture_on_commit_callbacks):
    from queues import services

    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_1, SALES_4), (SALES_3, SALES_2)],
                               user=manager)
    with django_capture_on_commit_callbacks(execute=False):
        run = handovers.handover_start(plan=plan, user=manager)
        handovers.handover_advance(run_id=run.pk)
    sandbox.fault(route="*", status=401, times=20)
    for reroute in run.reroutes.all():
        services.reroute_execute(reroute_id=reroute.pk, attempt=1)
    with django_capture_on_commit_callbacks(execute=False):
        handovers.handover_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "finished"
    listed = manager_client.get("/handovers/").content.decode()
    assert 'by manager: finished, <strong class="error">2 of 2 moves failed</strong>' in listed

    with django_capture_on_commit_callbacks(execute=False):  # the moves wait for their new reroutes
        assert handovers.handover_retry_failed(run=run) == 2
    page = manager_client.get(f"/handovers/runs/{run.pk}/").content.decode()
    rows = re.findall(r'<tr class="item-[^"]*">.*?</tr>', page, re.S)
    assert len(rows) == 2 and all("Waiting" in row and "Retrying." in row and "Failed" not in row for row in rows)
    assert "0 of 2 moves done" in page


def test_a_move_whose_number_left_sparkbot_names_it_as_the_monitor_last_knew_it(manager_client, sandbox, manager,
                                                                               django_capture_on_commit_callbacks):
    from queues import devices, monitor

    monitor.monitor_cycle()  # the monitor has seen Sales-3
    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_3, SALES_4)], user=manager)
    sandbox.control("POST", f"/devices/{SALES_3}/remove")
    devices.device_list_forget()
    with django_capture_on_commit_callbacks(execute=False):
        run = handovers.handover_start(plan=plan, user=manager)
    item = run.items.get()
    assert (item.status, item.source_alias, item.source_phone) == ("skipped", "Sales-3", "+447700900003")
    assert item.waiting_reason == ("Sales-3 (+447700900003) is no longer a SparkBot device; edit the plan and "
                                   "choose another number.")


def test_the_plans_list_warns_of_targets_that_cannot_deliver_now(manager_client, sandbox, manager):
    from queues import monitor
    from sparkbot_sandbox.seed import OFFLINE_DEVICE

    monitor.monitor_cycle()
    handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_3, OFFLINE_DEVICE), (SALES_1, SALES_4)],
                        user=manager)
    handovers.plan_save(plan=HandoverPlan(name="Morning"), pairs=[(SALES_1, SALES_2)], user=manager)
    listed = manager_client.get("/handovers/").content.decode()
    warning = ("Cannot deliver now, as the monitor last read it: Café Zürich — Kundendienst (offline). "
               "Its move would leave the messages waiting there.")
    assert listed.count(warning) == 1 and listed.index("Evening") < listed.index(warning) < listed.index("Morning")


def test_run_now_with_the_device_list_down_says_so_above_every_plan(manager_client, sandbox, manager):
    from queues import devices

    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_3, SALES_4)], user=manager)
    handovers.plan_save(plan=HandoverPlan(name="Morning"), pairs=[(SALES_1, SALES_2)], user=manager)
    sandbox.fault(route="devices_list", status=500, times=10)
    devices.device_list_forget()
    response = manager_client.post(f"/handovers/plans/{plan.pk}/run/")
    page = response.content.decode()
    assert response.status_code == 503 and not HandoverRun.objects.exists()
    assert "SparkBot did not answer (500)" in page and "Evening" in page and "Morning" in page
    assert "Recent runs" in page
