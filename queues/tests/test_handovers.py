"""Shift handovers through a real worker, a private broker and a sandbox with 120 extra numbers."""

import time
from datetime import datetime, time as clock, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError
from django.utils import timezone

from queues import handovers, sentences
from queues.models import HandoverPlan, HandoverRun, HandoverRunItem, Reroute
from sparkbot_sandbox.seed import SALES_2, SALES_4, extra_devices
from sparkbot_sandbox.state import SandboxState
from tests.support import Sandbox, sparkbot_settings

pytestmark = pytest.mark.django_db(transaction=True)
CONCURRENCY = 5
NUMBERS = [d["id"] for d in extra_devices(120)[0] if d["status"] in ("operative", "ready")]


@pytest.fixture(scope="module")
def numbers_sandbox():
    box = Sandbox(SandboxState(extra_devices=120))
    yield box
    box.stop()


@pytest.fixture(scope="module")
def handover_worker(worker_on_broker, numbers_sandbox):
    return worker_on_broker(numbers_sandbox.api_url, env={"HANDOVER_CONCURRENCY": str(CONCURRENCY)}, concurrency=8)


@pytest.fixture
def sandbox(numbers_sandbox, settings):
    """This module's sandbox, fresh, and this process pointed at it."""
    settings.HANDOVER_CONCURRENCY = CONCURRENCY
    numbers_sandbox.reset()
    with sparkbot_settings(SPARKBOT_API_URL=numbers_sandbox.api_url):
        yield numbers_sandbox


def plan_of(pairs, **options) -> HandoverPlan:
    return handovers.plan_save(plan=HandoverPlan(name=f"Plan {time.monotonic_ns()}", **options), pairs=pairs,
                               user=None)


def finished(run: HandoverRun, timeout: float = 60) -> HandoverRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.ended_at:
            return run
        time.sleep(0.05)
    raise AssertionError(f"handover run {run.pk} did not end: {list(run.items.values_list('status', 'waiting_reason'))}")


def max_overlap(reroutes) -> int:
    moments = sorted([(r.started_at, 1) for r in reroutes] + [(r.ended_at, -1) for r in reroutes])
    running = peak = 0
    for _, step in moments:
        running += step
        peak = max(peak, running)
    return peak


def test_it_hands_over_fifty_numbers_with_some_failing_and_retries_them(handover_worker, sandbox, manager):
    sources, targets = NUMBERS[:50], [SALES_4, SALES_2, NUMBERS[60], NUMBERS[61]]
    for source in sources:
        sandbox.set_queue(source, pending=3, processing=0, scheduled=0)
    failing = sources[5:50:10]  # 5 pairs
    for source in failing:
        sandbox.fault(route="route_queue", status=503, times=4, device=source)  # every attempt fails
    sandbox.control("POST", "/latency", json={"ms": 30})
    plan = plan_of([(source, targets[n % 4]) for n, source in enumerate(sources)])

    run = finished(handovers.handover_start(plan=plan, user=manager))
    reroutes = list(run.reroutes.all())
    assert run.status == "finished" and len(reroutes) == 50
    assert sorted(r.source_id for r in reroutes if r.status == "failed") == sorted(failing)
    assert all(r.origin == "handover" and r.requested_by == manager for r in reroutes)
    assert sum(r.messages_moved or 0 for r in reroutes) == 45 * 3
    assert 2 <= max_overlap(reroutes) <= CONCURRENCY  # in parallel, and never more than the setting

    assert handovers.handover_retry_failed(run=run) == 5
    run = finished(run)
    latest = [item.reroute for item in run.items.select_related("reroute")]
    assert run.status == "finished" and all(r.status == "succeeded" for r in latest)
    assert run.reroutes.count() == 55  # the five failed first tries stay in its history
    assert handovers.run_progress(run=run, items=list(run.items.all())).messages_moved == 50 * 3


def test_it_cancels_the_moves_not_started_yet(handover_worker, sandbox, manager):
    sources = NUMBERS[:20]
    sandbox.control("POST", "/latency", json={"ms": 150})
    run = handovers.handover_start(plan=plan_of([(s, SALES_4) for s in sources]), user=manager)
    time.sleep(0.3)
    cancelled = handovers.handover_cancel(run=run, user=manager)
    run = finished(run)
    assert run.status == "cancelled" and 0 < cancelled < 20
    statuses = list(run.items.values_list("status", flat=True))
    assert statuses.count("cancelled") == cancelled and statuses.count("started") == 20 - cancelled
    assert run.reroutes.count() == 20 - cancelled
    assert not run.reroutes.filter(status__in=Reroute.ACTIVE).exists()


def test_it_waits_for_a_busy_source_instead_of_failing(handover_worker, sandbox, manager, lead):
    from queues import devices, services

    busy = NUMBERS[0]
    sandbox.set_queue(busy, pending=4, processing=0, scheduled=0)
    sandbox.fault(route="queue_get", hang_seconds=0.8, times=1, device=busy)  # an outside reroute in flight
    device_list = devices.device_list()
    outside = services.reroute_request(source=device_list.get(busy), target=device_list.get(SALES_2),
                                       note="by hand", user=lead)
    time.sleep(0.2)
    run = handovers.handover_start(plan=plan_of([(busy, SALES_4), (NUMBERS[1], SALES_4)]), user=manager)
    time.sleep(0.3)
    waiting = run.items.get(source_id=busy)
    assert waiting.status == "waiting" and f"reroute #{outside.pk}" in waiting.waiting_reason
    run = finished(run)
    item = run.items.select_related("reroute").get(source_id=busy)
    assert item.reroute.status == "succeeded"
    outside.refresh_from_db()
    assert item.reroute.created_at >= outside.ended_at


def test_it_pauses_each_source_before_routing_and_resumes_it_after(handover_worker, sandbox, manager):
    source = NUMBERS[3]
    sandbox.set_queue(source, pending=6, processing=0, scheduled=0)
    run = finished(handovers.handover_start(plan=plan_of([(source, SALES_4)], pause_sources=True), user=manager))
    assert run.reroutes.get().messages_moved == 6
    calls = [(c["method"], c["body"]) for c in sandbox.calls(path_contains=f"/devices/{source}/queue")]
    assert calls == [("GET", None), ("POST", {"status": "pause"}), ("PATCH", {"device": SALES_4}),
                     ("GET", None), ("POST", {"status": "active"})]


def test_it_sets_a_rejecting_source_back_to_reject_not_to_active(handover_worker, sandbox, manager):
    source = NUMBERS[10]
    sandbox.set_queue(source, pending=3, processing=0, scheduled=0, status="reject")
    run = finished(handovers.handover_start(plan=plan_of([(source, SALES_4)], pause_sources=True), user=manager))
    assert run.reroutes.get().messages_moved == 3
    statuses = [c["body"]["status"] for c in sandbox.calls(method="POST", path_contains=f"/{source}/queue")]
    assert statuses == ["pause", "reject"]
    assert sandbox.queue(source)["status"] == "reject"


@pytest.mark.parametrize("held", ["pause", "freeze"])
def test_it_leaves_a_source_that_already_holds_delivery_as_the_operator_set_it(
        handover_worker, sandbox, manager, held):
    source = NUMBERS[11]
    sandbox.set_queue(source, pending=4, processing=0, scheduled=0, status=held)
    run = finished(handovers.handover_start(plan=plan_of([(source, SALES_4)], pause_sources=True), user=manager))
    assert run.reroutes.get().messages_moved == 4
    assert sandbox.calls(method="POST", path_contains=f"/{source}/queue") == []
    assert sandbox.queue(source)["status"] == held


def test_it_does_not_pause_a_source_whose_status_sparkbot_did_not_say_and_notes_why(
        handover_worker, sandbox, manager):
    source = NUMBERS[70]
    sandbox.set_queue(source, pending=5, processing=0, scheduled=0)
    sandbox.fault(route="queue_get", status=200, times=1, device=source,
                  body='{"total": 5, "pending": 5, "processing": 0, "scheduled": 0}')
    run = finished(handovers.handover_start(plan=plan_of([(source, SALES_4)], pause_sources=True), user=manager))
    reroute = run.reroutes.get()
    assert reroute.status == "succeeded" and reroute.messages_moved == 5 and reroute.source_queue_status == ""
    assert sandbox.calls(method="POST", path_contains=f"/{source}/queue") == []
    events = [(e.kind, e.message) for e in reroute.events.all()]
    read, note = events[2], events[3]
    assert read == ("call", sentences.call_answered(sentences.READ))
    assert note == ("call", sentences.not_paused_status_unknown(reroute.source_label))


def test_it_resumes_a_paused_source_even_when_its_move_fails(handover_worker, sandbox, manager):
    source = NUMBERS[4]
    sandbox.set_queue(source, pending=2, processing=0, scheduled=0)
    sandbox.fault(route="route_queue", status=409, times=1, device=source)
    run = finished(handovers.handover_start(plan=plan_of([(source, SALES_4)], pause_sources=True), user=manager))
    assert run.reroutes.get().status == "failed"
    methods = [(c["method"], (c["body"] or {}).get("status")) for c in sandbox.calls(path_contains=f"/{source}/queue")]
    assert methods[1] == ("POST", "pause") and methods[-1] == ("POST", "active")
    assert sandbox.queue(source)["status"] == "active"


def test_it_runs_an_ordered_plan_one_move_after_another(handover_worker, sandbox, manager):
    a, b, c = NUMBERS[5], NUMBERS[6], NUMBERS[7]
    sandbox.set_queue(a, pending=2, processing=0, scheduled=0)
    sandbox.set_queue(b, pending=5, processing=0, scheduled=0)
    run = finished(handovers.handover_start(plan=plan_of([(b, c), (a, b)], in_order=True), user=manager))
    first, second = [item.reroute for item in run.items.select_related("reroute").order_by("position")]
    assert second.created_at >= first.ended_at
    assert (first.messages_moved, second.messages_moved) == (5, 2)  # B's own queue went on to C before A's came in


def test_it_fires_a_daily_schedule_at_its_local_time_once(handover_worker, sandbox):
    lisbon = ZoneInfo("Europe/Lisbon")
    plan = handovers.plan_save(plan=HandoverPlan(name="Night to Day", schedule="daily", daily_time=clock(6, 0),
                                                 time_zone="Europe/Lisbon"), pairs=[(NUMBERS[8], SALES_4)], user=None)
    due = datetime(2026, 11, 26, 6, 0, tzinfo=lisbon)
    plan.next_run_at = due
    plan.save()
    assert handovers.handovers_tick(now=due - timedelta(seconds=1))["started"] == 0
    assert handovers.handovers_tick(now=due + timedelta(seconds=5))["started"] == 1
    assert handovers.handovers_tick(now=due + timedelta(seconds=6))["started"] == 0  # once per day
    plan.refresh_from_db()
    assert plan.next_run_at == datetime(2026, 11, 27, 6, 0, tzinfo=lisbon)
    run = HandoverRun.objects.get()
    assert (run.trigger, run.started_by_username, run.plan_name) == ("schedule", "schedule", "Night to Day")


def test_it_fires_a_one_off_schedule_once_and_then_never(handover_worker, sandbox):
    at = timezone.now() + timedelta(hours=1)
    plan = handovers.plan_save(plan=HandoverPlan(name="Once", schedule="once", run_at=at),
                               pairs=[(NUMBERS[9], SALES_4)], user=None)
    assert plan.next_run_at == at
    assert handovers.handovers_tick(now=at + timedelta(seconds=1))["started"] == 1
    plan.refresh_from_db()
    assert plan.next_run_at is None
    assert handovers.handovers_tick(now=at + timedelta(days=1))["started"] == 0


def test_it_keeps_a_daily_time_across_the_change_to_summer_time():
    plan = HandoverPlan(schedule="daily", daily_time=clock(6, 0), time_zone="Europe/Lisbon")
    before_change = datetime(2026, 3, 28, 7, 0, tzinfo=ZoneInfo("UTC"))  # the clocks go forward on 29 March
    assert handovers.next_run_time(plan=plan, now=before_change) == datetime(2026, 3, 29, 5, 0, tzinfo=ZoneInfo("UTC"))


def unfinished_run_of(plan: HandoverPlan) -> HandoverRun:
    """A run that has not finished, written straight to the database (no task is published for it)."""
    return HandoverRun.objects.create(plan=plan, plan_name=plan.name, started_by_username="manager")


def test_it_never_retries_a_move_whose_route_call_sparkbot_accepted(sandbox):
    run = HandoverRun.objects.create(plan_name="Evening", status="finished", ended_at=timezone.now())
    routed = Reroute.objects.create(  # as an older version recorded it: routed, then "failed" on the last read
        requested_by_username="manager", origin="handover", handover_run=run, source_id=NUMBERS[12],
        source_alias="x", target_id=SALES_4, target_alias="y", status="failed", routed_at=timezone.now(),
        ended_at=timezone.now(), error_code="unavailable")
    HandoverRunItem.objects.create(run=run, position=1, source_id=NUMBERS[12], target_id=SALES_4, status="started",
                                   reroute=routed)
    assert handovers.handover_retry_failed(run=run) == 0


def test_it_allows_one_unfinished_run_of_a_plan_at_a_time(sandbox, manager):
    plan = plan_of([(NUMBERS[13], SALES_4)])
    first = unfinished_run_of(plan)
    with pytest.raises(handovers.RunInProgress) as caught:
        handovers.handover_start(plan=plan, user=manager)
    assert caught.value.run == first
    with pytest.raises(IntegrityError):  # the database itself refuses a second one
        HandoverRun.objects.create(plan=plan, plan_name=plan.name)


def test_it_skips_a_scheduled_run_while_a_run_of_the_plan_is_unfinished(handover_worker, sandbox):
    at = timezone.now() + timedelta(hours=1)
    plan = handovers.plan_save(plan=HandoverPlan(name="Busy", schedule="once", run_at=at),
                               pairs=[(NUMBERS[14], SALES_4)], user=None)
    manual = unfinished_run_of(plan)
    assert handovers.handovers_tick(now=at + timedelta(seconds=1))["started"] == 0
    plan.refresh_from_db()
    assert plan.next_run_at is None and HandoverRun.objects.get() == manual
    assert plan.schedule_problem.endswith(f"was skipped: run #{manual.pk} of this plan had not finished.")
    finished(manual)  # the tick's nudge ends the empty run


def test_it_records_a_plan_that_cannot_start_and_goes_on_with_the_tick(handover_worker, sandbox):
    running = unfinished_run_of(plan_of([(NUMBERS[15], SALES_4)]))
    at = timezone.now() - timedelta(seconds=1)
    plans = [handovers.plan_save(plan=HandoverPlan(name=name, schedule="daily", daily_time=clock(6, 0)),
                                 pairs=[(NUMBERS[16 + n], SALES_4)], user=None) for n, name in enumerate("AB")]
    HandoverPlan.objects.filter(pk__in=[p.pk for p in plans]).update(next_run_at=at)
    HandoverPlan.objects.filter(pk=plans[0].pk).update(time_zone="Not/AZone")  # this one raises
    assert handovers.handovers_tick() == {"started": 1, "failed": 1, "nudged": 2}  # the older run, and B's
    broken = HandoverPlan.objects.get(pk=plans[0].pk)
    assert broken.schedule_problem.startswith("The run due at")
    assert "could not start: an internal error (ZoneInfoNotFoundError)." in broken.schedule_problem
    finished(running)
    finished(HandoverRun.objects.get(plan=plans[1]))


def test_it_says_why_a_scheduled_run_waits_when_the_device_list_is_unavailable(sandbox):
    at = timezone.now() - timedelta(seconds=1)
    plan = handovers.plan_save(plan=HandoverPlan(name="Dark", schedule="once", run_at=at + timedelta(hours=1)),
                               pairs=[(NUMBERS[18], SALES_4)], user=None)
    HandoverPlan.objects.filter(pk=plan.pk).update(next_run_at=at)
    sandbox.fault(route="devices_list", status=500, times=1000)
    assert handovers.handovers_tick() == {"started": 0, "failed": 1, "nudged": 0}
    plan.refresh_from_db()
    assert plan.next_run_at == at  # still due: tried again at the next tick
    assert "could not start: SparkBot did not answer (500)." in plan.schedule_problem


def test_it_never_walks_the_device_list_inside_a_transaction(handover_worker, sandbox, monkeypatch):
    from django.db import connection

    from queues import devices, sparkbot

    walks_in_transaction = []
    read_page = sparkbot.SparkBotClient.devices_page

    def watched_page(self, **kwargs):  # a spy: the real call, noting whether a transaction was open
        walks_in_transaction.append(connection.in_atomic_block)
        return read_page(self, **kwargs)

    monkeypatch.setattr(sparkbot.SparkBotClient, "devices_page", watched_page)
    devices.device_list_forget()
    at = timezone.now() - timedelta(seconds=1)
    plan = handovers.plan_save(plan=HandoverPlan(name="Cold", schedule="once", run_at=at + timedelta(hours=1)),
                               pairs=[(NUMBERS[19], SALES_4)], user=None)
    HandoverPlan.objects.filter(pk=plan.pk).update(next_run_at=at)
    assert handovers.handovers_tick()["started"] == 1
    assert walks_in_transaction and not any(walks_in_transaction)
    finished(HandoverRun.objects.get(plan=plan))


def test_it_starts_a_run_when_the_task_queue_is_down_and_the_tick_moves_it_on_later(handover_worker, broker,
                                                                                     sandbox, manager):
    """Found by the chaos soak: the run was committed, then telling a worker raised, so "Run now"
    answered 500 for a run that had started (and the caller tried again)."""
    from tests.support import celery_publishes_to

    plan = plan_of([(NUMBERS[20], SALES_4)])
    celery_publishes_to("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        run = handovers.handover_start(plan=plan, user=manager)
        assert handovers.handovers_tick()["nudged"] == 1  # each nudge fails alone; the tick goes on
    finally:
        celery_publishes_to(broker.url)
    waiting = run.items.get()
    assert waiting.status == HandoverRunItem.Status.WAITING
    assert waiting.waiting_reason == "The task queue is not answering: this move starts by itself when it is back."
    handovers.handovers_tick()  # the task queue is back: the tick's nudge moves the run on
    assert finished(run).items.get().reroute.status == Reroute.Status.SUCCEEDED
