"""Failover and overflow rules, evaluated in this process over the monitor's real readings of the sandbox.

Time is moved by evaluating "as of" a later moment; reroutes a rule fires run to their end in this
process (the flow through a worker and beat is in test_failover.py).
"""

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from queues import monitor, rules, services
from queues.models import Reroute, Rule, RuleDecision
from sparkbot_sandbox.seed import OFFLINE_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]  # make run evaluates rules on SQLite
Outcome = RuleDecision.Outcome


@pytest.fixture
def fleet(sandbox, settings):
    settings.MONITOR_CALLS_PER_MINUTE = 6000
    settings.RULES_MINUTE_SECONDS = 60
    return sandbox


def read_fleet(sandbox=None):
    """One monitor cycle with the device list due (it also evaluates the rules, as of now)."""
    from queues.models import MonitorState

    MonitorState.objects.filter(pk=MonitorState.SINGLETON).update(devices_read_at=None)
    assert monitor.monitor_cycle().ran


def offline(sandbox, device_id: str) -> None:
    sandbox.control("POST", f"/devices/{device_id}", json={"sessionStatus": "offline"})


def online(sandbox, device_id: str) -> None:
    sandbox.control("POST", f"/devices/{device_id}", json={"sessionStatus": "online"})


def rule(manager, **fields) -> Rule:
    defaults = {"name": f"Rule {Rule.objects.count() + 1}", "owner": manager, "owner_username": "manager",
                "enabled": True, "dry_run": False, "sources": [SALES_1], "targets": [SALES_4], "minutes": 5,
                "messages": 1, "cooldown_minutes": 30}
    return Rule.objects.create(**{**defaults, **fields})


def evaluate(after_minutes: float = 0) -> dict:
    return rules.rules_evaluate(now=timezone.now() + timedelta(minutes=after_minutes))


def last(rule_: Rule) -> RuleDecision:
    return rule_.decisions.order_by("-id").first()


def run(reroute: Reroute) -> Reroute:
    wait, attempt = services.reroute_execute(reroute_id=reroute.pk, attempt=1), 1
    while wait is not None:
        attempt += 1
        wait = services.reroute_execute(reroute_id=reroute.pk, attempt=attempt)
    reroute.refresh_from_db()
    return reroute


def test_it_waits_out_the_minutes_then_moves_the_queue_of_a_number_that_went_offline(fleet, manager):
    failover = rule(manager, name="Sales failover")
    read_fleet()
    offline(fleet, SALES_1)
    read_fleet()
    waiting = last(failover)  # recorded once, when the number was first seen offline
    assert waiting.outcome == Outcome.WAITING
    assert waiting.message == "Sales-1 offline for 0 s holding 12 messages; fires in 5 min if it lasts."
    assert waiting.readings["source"]["session_status"] == "offline" and waiting.readings["seconds_left"] == 300
    evaluate(after_minutes=2)
    assert last(failover) == waiting and Reroute.objects.count() == 0

    evaluate(after_minutes=6)
    fired = last(failover)
    assert fired.outcome == Outcome.FIRED and fired.reroute is not None
    reroute = run(fired.reroute)
    assert (reroute.origin, reroute.rule_id, reroute.rule_name) == ("rule", failover.pk, "Sales failover")
    assert (reroute.requested_by, reroute.requested_by_username) == (manager, "manager")
    assert reroute.note.startswith("Sales-1 offline for 6 min holding 12 messages: rule “Sales failover”")
    assert reroute.events.order_by("id").first().message == (  # nobody asked: the rule did, by itself
        "Failover rule “Sales failover” (owner: manager) asked to move the queue of Sales-1 (+447700900001) to "
        "Sales-4 (+447700900004).")
    assert reroute.status == "succeeded" and reroute.messages_moved == 12
    assert fleet.queue(SALES_4)["total"] == 12


def test_it_starts_the_clock_again_when_the_number_comes_back_online(fleet, manager):
    failover = rule(manager)
    read_fleet()
    offline(fleet, SALES_1)
    read_fleet()
    online(fleet, SALES_1)
    read_fleet()  # back online: the clock stops
    assert last(failover).outcome in (Outcome.WAITING, Outcome.CLEARED)
    offline(fleet, SALES_1)
    read_fleet()
    evaluate(after_minutes=4)  # 4 min since it went offline again (more since the first time)
    assert last(failover).outcome == Outcome.WAITING and Reroute.objects.count() == 0


def test_it_waits_out_its_cooldown_after_firing(fleet, manager):
    failover = rule(manager, minutes=0, cooldown_minutes=30)
    offline(fleet, SALES_1)
    read_fleet()
    first = last(failover)
    assert first.outcome == Outcome.FIRED
    run(first.reroute)
    fleet.set_queue(SALES_1, pending=5)  # new messages arrive on the offline number
    read_fleet()
    evaluate(after_minutes=10)
    cooling = last(failover)
    assert cooling.outcome == Outcome.COOLING_DOWN and "cooling down until" in cooling.message
    assert re.search(r"cooling down until \d\d:\d\d:\d\d \(", cooling.message)  # to the second: 00:25 read as over
    assert Reroute.objects.count() == 1
    evaluate(after_minutes=31)
    assert last(failover).outcome == Outcome.FIRED and Reroute.objects.count() == 2


def test_it_records_what_it_would_do_in_dry_run_and_routes_nothing(fleet, manager):
    trial = rule(manager, minutes=0, dry_run=True)
    offline(fleet, SALES_1)
    read_fleet()
    decision = last(trial)
    assert decision.outcome == Outcome.WOULD_FIRE
    assert decision.message.startswith("Would move the queue of Sales-1 to Sales-4 (dry run).")
    assert Reroute.objects.count() == 0 and fleet.calls(method="PATCH") == []


def test_its_fallback_list_skips_a_first_choice_that_cannot_deliver(fleet, manager):
    failover = rule(manager, minutes=0, target_kind=Rule.TargetKind.FALLBACK, targets=[OFFLINE_DEVICE, SALES_4])
    offline(fleet, SALES_1)
    read_fleet()
    fired = last(failover)
    assert fired.outcome == Outcome.FIRED and fired.reroute.target_id == SALES_4
    first = fired.readings["targets"][0]
    assert (first["id"], first["healthy"]) == (OFFLINE_DEVICE, False) and first["why"].startswith("cannot deliver")


def test_its_pool_picks_the_healthy_member_with_the_smallest_queue(fleet, manager):
    fleet.set_queue(SALES_2, pending=3)
    pool = rule(manager, minutes=0, target_kind=Rule.TargetKind.POOL, sources=[OFFLINE_DEVICE],
                targets=[SALES_3, SALES_2, SALES_4])  # 37, 3 and 0 queued
    read_fleet()
    assert last(pool).reroute.target_id == SALES_4


def test_it_routes_nothing_without_a_healthy_target_and_says_why(fleet, manager):
    failover = rule(manager, minutes=0, targets=[OFFLINE_DEVICE])
    offline(fleet, SALES_1)
    read_fleet()
    decision = last(failover)
    assert decision.outcome == Outcome.NO_HEALTHY_TARGET
    assert "no healthy target: Café Zürich — Kundendienst cannot deliver now (offline, operative)" in decision.message
    assert decision.message.endswith("Tried again next cycle.")
    assert Reroute.objects.count() == 0


def test_a_target_with_a_reroute_in_progress_is_not_healthy(fleet, manager, lead):
    failover = rule(manager, minutes=0)
    from queues import devices

    listed = devices.device_list()
    services.reroute_request(source=listed.get(SALES_4), target=listed.get(SALES_2), note="", user=lead)
    offline(fleet, SALES_1)
    read_fleet()
    assert last(failover).readings["targets"][0]["why"] == "is the source of a reroute in progress"


def test_an_overflow_rule_never_fills_a_target_over_an_overflow_threshold(fleet, manager):
    rule(manager, name="Sales-1 overflow", condition=Rule.Condition.OVERFLOW, sources=[SALES_1], messages=40,
         targets=[SALES_2])
    overflow = rule(manager, name="Sales-3 overflow", condition=Rule.Condition.OVERFLOW, sources=[SALES_3],
                    messages=30, minutes=0, target_kind=Rule.TargetKind.FALLBACK, targets=[SALES_1, SALES_4])
    read_fleet()
    fired = last(overflow)
    assert fired.outcome == Outcome.FIRED and fired.reroute.target_id == SALES_4
    assert fired.readings["targets"][0]["why"] == "would hold 49 messages afterwards, over rule “Sales-1 overflow”'s 40"


def test_an_overflow_rule_counts_its_minutes_from_when_the_queue_first_held_enough(fleet, manager):
    overflow = rule(manager, condition=Rule.Condition.OVERFLOW, sources=[SALES_3], messages=30, minutes=5)
    read_fleet()
    evaluate(after_minutes=1)
    assert last(overflow).outcome == Outcome.WAITING
    fleet.set_queue(SALES_3, pending=10, processing=0)  # below 30: the clock stops
    read_fleet()
    fleet.set_queue(SALES_3, pending=40)
    read_fleet()
    evaluate(after_minutes=4)
    assert last(overflow).outcome == Outcome.WAITING and Reroute.objects.count() == 0


def test_two_rules_in_a_circle_cannot_move_a_queue_back_and_forth_within_the_cooldown(fleet, manager):
    there = rule(manager, name="1 to 4", minutes=0, sources=[SALES_1], targets=[SALES_4])
    back = rule(manager, name="4 to 1", minutes=0, sources=[SALES_4], targets=[SALES_1])
    offline(fleet, SALES_1)
    read_fleet()
    run(last(there).reroute)
    online(fleet, SALES_1)
    offline(fleet, SALES_4)  # now Sales-4 holds the 12 messages and cannot deliver
    read_fleet()
    decision = last(back)
    assert decision.outcome == Outcome.NO_HEALTHY_TARGET
    assert decision.readings["targets"][0]["why"] == ("sent its queue here by rule within the cooldown "
                                                      "(no moving it back and forth)")
    assert Reroute.objects.count() == 1


def test_it_fires_only_inside_its_active_hours(fleet, manager):
    now = timezone.localtime(timezone.now(), timezone=timezone.get_fixed_timezone(0))
    later = (now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    much_later = (now + timedelta(hours=4)).time().replace(second=0, microsecond=0)
    office = rule(manager, minutes=0, active_from=later, active_until=much_later, time_zone="UTC")
    offline(fleet, SALES_1)
    read_fleet()
    decision = last(office)
    assert decision.outcome == Outcome.OUTSIDE_HOURS and "outside the rule's active hours" in decision.message
    assert Reroute.objects.count() == 0


def test_it_records_a_decision_when_it_changes_not_at_every_cycle(fleet, manager):
    failover = rule(manager, minutes=5)
    offline(fleet, SALES_1)
    for _ in range(3):
        read_fleet()
    assert list(failover.decisions.values_list("outcome", flat=True)) == [Outcome.WAITING]


@pytest.mark.django_db(transaction=True)
def test_two_processes_evaluating_at_once_fire_once(fleet, manager):
    rule(manager, minutes=0)
    offline(fleet, SALES_1)
    monitor.monitor_cycle()
    barrier, results = threading.Barrier(4), []

    def evaluate_now():
        barrier.wait()
        results.append(rules.rules_evaluate(wait_seconds=5))
        connection.close()

    threads = [threading.Thread(target=evaluate_now) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Reroute.objects.filter(origin="rule").count() == 1
    assert RuleDecision.objects.filter(outcome=Outcome.FIRED).count() == 1


def test_it_writes_many_watches_at_once_keeping_what_the_write_does_not_change(manager):
    """An evaluation after many rules were enabled writes thousands of watches: they are replaced in
    bulk (bulk_update's CASE took 20 s at 11,500), and must come out as an update would leave them."""
    from queues.models import RuleWatch

    watched = rule(manager)
    decision = RuleDecision.objects.create(rule=watched, source_id="s", source_alias="S", outcome="waiting",
                                           message="kept", readings={})
    stored = RuleWatch.objects.bulk_create(
        RuleWatch(rule=watched, source_id=f"{n:024x}", last_outcome="waiting", last_message=f"said {n}",
                  last_decision=decision) for n in range(60))
    since = timezone.now()
    rows = [RuleWatch(pk=w.pk, rule_id=watched.pk, source_id=w.source_id, met_since=since,
                      last_outcome="cooling_down") for w in stored]
    RuleWatch.objects.filter(pk=stored[0].pk).delete()  # its rule was changed meanwhile: not brought back
    rules._write_watch_rows(rows, fields=rules.WATCH_MEMORY)
    after = {w.source_id: w for w in RuleWatch.objects.filter(rule=watched)}
    assert len(after) == 59 and stored[0].source_id not in after
    assert all(w.met_since == since and w.last_outcome == "cooling_down" for w in after.values())
    assert after[stored[7].source_id].last_message == "said 7" and after[stored[7].source_id].last_decision == decision
