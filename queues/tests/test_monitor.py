"""The fleet monitor against the real sandbox over HTTP: states, readings, the call budget, back-off, one cycle at a time."""

import re
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection
from django.utils import timezone

from queues import devices, monitor, sparkbot
from queues.models import MonitorState, Number, NumberSnapshot
from sparkbot_sandbox.seed import OFFLINE_DEVICE, SALES_1, SALES_2, SALES_3, SEED_DEVICES

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(sandbox, settings):
    """A monitor that reads every queue in one cycle, with the device list due at once."""
    settings.MONITOR_CALLS_PER_MINUTE = 600
    settings.MONITOR_CYCLE_SECONDS = 10  # a share of 100 calls a cycle
    settings.MONITOR_DEVICES_SECONDS = 30
    return sandbox


def cycle(**kwargs) -> monitor.CycleReport:
    report = monitor.monitor_cycle(**kwargs)
    assert report.ran
    return report


def walk_again_now() -> None:
    MonitorState.objects.filter(pk=MonitorState.SINGLETON).update(devices_read_at=None)


def queue_reads(sandbox) -> list[str]:
    return [c["path"].split("/")[-2] for c in sandbox.calls(method="GET") if c["path"].endswith("/queue")]


def test_it_records_every_number_with_its_state_and_queue(fleet):
    report = cycle()
    assert report.walked and report.readings == len(SEED_DEVICES)
    assert Number.objects.count() == len(SEED_DEVICES)
    sales_3 = Number.objects.get(device_id=SALES_3)
    assert (sales_3.alias, sales_3.account_status, sales_3.session_status, sales_3.can_deliver) == (
        "Sales-3", "operative", "online", True)
    assert (sales_3.queue_total, sales_3.queue_pending, sales_3.queue_processing) == (37, 35, 2)
    assert sales_3.read_at and sales_3.state_since and sales_3.snapshots.count() == 2  # listed, then read
    assert Number.objects.get(device_id=OFFLINE_DEVICE).can_deliver is False


def test_it_sees_a_number_go_offline_and_its_queue_fill_with_since_when(fleet):
    cycle()
    first_seen = Number.objects.get(device_id=SALES_1).state_since
    fleet.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    fleet.set_queue(SALES_1, pending=400)
    walk_again_now()
    before = timezone.now()
    cycle()
    number = Number.objects.get(device_id=SALES_1)
    assert (number.session_status, number.can_deliver, number.queue_total) == ("offline", False, 400)
    assert number.state_since >= before > first_seen
    last = number.snapshots.order_by("-at").first()
    assert (last.session_status, last.queue_total) == ("offline", 400)


def test_it_reads_the_most_urgent_numbers_first(fleet, settings):
    cycle()
    fleet.set_queue(SALES_2, pending=5)  # can deliver, empty at its last reading
    fleet.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    walk_again_now()
    settings.MONITOR_CALLS_PER_MINUTE = 60  # a share of 10 a cycle, one of them the walk
    fleet.control("DELETE", "/calls")
    cycle()
    # Sales-1 cannot deliver and held 12; the others holding messages next; then the oldest readings
    holding = {d["id"] for d in SEED_DEVICES if sum(fleet.queue(d["id"])[k] for k in ("pending", "scheduled")) and
               d["id"] not in (SALES_1, SALES_2)}
    reads = queue_reads(fleet)
    assert reads[0] == SALES_1 and set(reads[1:1 + len(holding)]) == holding
    assert SALES_2 not in reads[:1 + len(holding)]


def test_it_never_makes_more_calls_in_a_minute_than_its_budget(fleet, settings):
    settings.MONITOR_CALLS_PER_MINUTE = 12
    settings.MONITOR_CYCLE_SECONDS = 15  # a share of 3 calls a cycle
    fleet.control("DELETE", "/calls")
    reports = [monitor.monitor_cycle() for _ in range(8)]
    made = len(fleet.calls())
    assert made == sum(r.calls for r in reports) == 12
    assert [r.calls for r in reports[:4]] == [4, 3, 3, 2] and all(r.calls == 0 for r in reports[4:])
    old = MonitorState.objects.get().calls
    MonitorState.objects.update(calls=[at - 61 for at in old])  # a minute later the budget is back
    assert monitor.monitor_cycle().calls == 3


def test_it_pauses_the_whole_monitor_for_as_long_as_retry_after_says(fleet):
    fleet.fault(route="queue_get", status=429, retry_after="45", times=1)
    report = cycle()
    state = MonitorState.objects.get()
    assert report.paused.startswith("SparkBot answered 429") or "429" in report.paused
    assert timedelta(seconds=44) < state.paused_until - timezone.now() <= timedelta(seconds=45)
    fleet.control("DELETE", "/calls")
    assert cycle().paused == state.pause_reason and fleet.calls() == []  # no call while paused
    MonitorState.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
    assert cycle().readings > 0
    assert MonitorState.objects.get().pause_reason == ""


def test_it_backs_off_longer_each_time_sparkbot_stays_down(fleet, settings):
    settings.MONITOR_CYCLE_SECONDS = 10
    fleet.fault(route="devices_list", status=503, times=100)
    waits = []
    for _ in range(3):
        walk_again_now()
        cycle()
        state = MonitorState.objects.get()
        waits.append(round((state.paused_until - timezone.now()).total_seconds()))
        assert state.pause_reason.startswith("SparkBot did not answer (503).")
        MonitorState.objects.update(paused_until=None)
    assert waits == [10, 20, 40]


@pytest.mark.django_db(transaction=True)
def test_it_never_calls_sparkbot_inside_a_transaction(fleet, monkeypatch):
    in_transaction = []
    request = sparkbot.SparkBotClient._call

    def watched(self, *args, **kwargs):  # a spy: the real call, noting whether a transaction was open
        in_transaction.append(connection.in_atomic_block)
        return request(self, *args, **kwargs)

    monkeypatch.setattr(sparkbot.SparkBotClient, "_call", watched)
    devices.device_list_forget()
    cycle()
    assert len(in_transaction) > len(SEED_DEVICES) and not any(in_transaction)


def test_it_runs_no_cycle_while_another_process_holds_the_lease(fleet):
    monitor.monitor_state()
    MonitorState.objects.update(lease_owner="other", lease_until=timezone.now() + timedelta(minutes=1))
    report = monitor.monitor_cycle()
    assert not report.ran and fleet.calls() == []
    MonitorState.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # that process died
    assert monitor.monitor_cycle().ran


def test_it_writes_a_snapshot_when_something_changed_or_the_heartbeat_is_due(fleet, settings):
    settings.MONITOR_HEARTBEAT_MINUTES = 15
    cycle()
    number = Number.objects.get(device_id=SALES_2)
    count = number.snapshots.count()
    cycle()
    assert number.snapshots.count() == count  # nothing changed, heartbeat not due
    fleet.set_queue(SALES_2, pending=3)
    cycle()
    assert number.snapshots.count() == count + 1
    Number.objects.filter(pk=number.pk).update(snapshot_at=timezone.now() - timedelta(minutes=16))
    cycle()
    assert number.snapshots.count() == count + 2


def test_it_keeps_the_days_highest_depth_per_half_hour():
    at = datetime(2026, 11, 25, 12, 0, tzinfo=dt_timezone.utc)
    points = monitor.depth_with([], 5, at)
    points = monitor.depth_with(points, 9, at + timedelta(minutes=10))
    points = monitor.depth_with(points, 2, at + timedelta(minutes=40))
    assert [depth for _slot, depth in points] == [9, 2]
    later = monitor.depth_with(points, 1, at + timedelta(hours=25))
    assert [depth for _slot, depth in later] == [1]  # older than a day: dropped


def test_it_removes_old_snapshots_and_thins_the_older_ones_to_one_an_hour(fleet, settings):
    settings.MONITOR_RETENTION_DAYS = 30
    cycle()
    number = Number.objects.get(device_id=SALES_2)
    now = timezone.now().replace(minute=50, second=0, microsecond=0)  # the snapshots below share an hour
    NumberSnapshot.objects.all().delete()
    for days, minutes in [(40, 0), (10, 40), (10, 30), (10, 20), (2, 20), (2, 10)]:
        NumberSnapshot.objects.create(number=number, at=now - timedelta(days=days, minutes=minutes),
                                      account_status="operative", session_status="online")
    NumberSnapshot.objects.create(number=number, at=now - timedelta(days=10, minutes=10), account_status="operative",
                                  session_status="offline")  # a change of state stays
    assert monitor.snapshots_prune(now=now) == {"removed": 1, "thinned": 2}
    assert number.snapshots.count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_workers_with_beat_never_run_two_cycles_at_once(sandbox_server, worker_on_broker):
    sandbox_server.reset()
    env = {"MONITOR_CYCLE_SECONDS": "1", "MONITOR_DEVICES_SECONDS": "1", "MONITOR_CALLS_PER_MINUTE": "600"}
    workers = [worker_on_broker(sandbox_server.api_url, env=env, beat=True, loglevel="INFO") for _ in range(2)]
    sandbox_server.control("POST", "/latency", json={"ms": 30})  # cycles long enough to overlap if they could
    try:
        time.sleep(8)
    finally:
        sandbox_server.control("POST", "/latency", json={"ms": 0})
        for worker in workers:
            worker.stop()
    spans = []
    for worker in workers:
        log = worker.log_path.read_text()
        started, ended = _by_token(log, "started"), _by_token(log, "ended")
        spans += [(at, ended[token]) for token, at in started.items() if token in ended]
    spans.sort()
    assert len(spans) >= 6, spans
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:])), spans


def _by_token(log: str, what: str) -> dict[str, str]:
    return {token: at for at, token in re.findall(
        rf"^(\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO queues\.monitor: monitor cycle (\w+) {what}", log, re.M)}


def test_it_walks_the_device_list_on_the_cycle_its_interval_falls_on(fleet):
    """Found by bench/rules.py: the walk's own time pushed "30 s since the last walk" just past the
    cycle that should walk, so the list was read every 40 s (every second cycle when both are equal)."""
    cycle()
    walked_at = MonitorState.objects.get().devices_read_at
    on_time = walked_at + timedelta(seconds=30) - timedelta(milliseconds=300)  # the beat's tick, the walk's length
    assert cycle(now=on_time).walked
    assert not cycle(now=on_time + timedelta(seconds=10)).walked  # the next one is not due yet
