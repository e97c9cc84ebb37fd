"""An evaluation reuses what its process worked out in the evaluation before (rules.Memory): only the
pairs whose inputs changed are decided again. These tests hold it to deciding exactly what an
evaluation that reads and decides everything would, and to trusting its memory only when nothing
else can have changed the rules' memory of their sources."""

import random
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from queues import rules
from queues.models import MonitorState, Number, Reroute, Rule, RuleDecision, RuleWatch

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
Outcome = RuleDecision.Outcome


@pytest.fixture(autouse=True)
def nothing_remembered():
    rules.rules_forget()
    yield
    rules.rules_forget()


def seed(rng: random.Random, now, numbers: int = 40) -> list[str]:
    rows = [Number(device_id=f"{n:024x}", alias=f"Number {n}", phone=f"+4477{n:08d}", account_status="operative",
                   session_status="online", can_deliver=True, state_since=now, listed_at=now,
                   queue_status="active", queue_total=rng.choice([0, 0, 5, 60, 250]), read_at=now)
            for n in range(numbers)]
    Number.objects.bulk_create(rows)
    ids = [row.device_id for row in rows]
    pool = ids[-6:]
    for r in range(14):
        Rule.objects.create(
            name=f"Rule {r}", owner_username="lead", enabled=True, dry_run=r % 3 == 0,
            condition="cannot_deliver" if r % 2 else "overflow", minutes=rng.choice([0, 1, 3]),
            messages=rng.choice([1, 50, 200]), all_sources=r % 4 == 0, exceptions=pool,
            sources=[] if r % 4 == 0 else rng.sample(ids[:-6], 4),
            target_kind=["pool", "list", "one"][r % 3], targets=pool if r % 3 == 0 else rng.sample(pool, 1 + r % 3),
            cooldown_minutes=rng.choice([1, 2]))
    return ids


def change_the_fleet(rng: random.Random, ids: list[str], now) -> None:
    """What can happen between two evaluations: numbers read anew (offline, online, queues that grow
    or drain, a paused queue, a number gone from the list), a reroute that ends."""
    for device_id in rng.sample(ids, rng.choice([0, 1, 3, 6])):
        number = Number.objects.get(device_id=device_id)
        change = rng.choice(["offline", "online", "queue", "queue", "paused", "unlisted"])
        if change == "offline" and number.can_deliver:
            number.session_status, number.can_deliver, number.undeliverable_since = "offline", False, now
        elif change == "online":
            number.session_status, number.can_deliver, number.undeliverable_since = "online", True, None
            number.listed = True
        elif change == "queue":
            number.queue_total = max(0, (number.queue_total or 0) + rng.choice([-60, -5, 5, 60, 200]))
        elif change == "paused":
            number.queue_status = rng.choice(["paused", "active"])
        elif change == "unlisted":
            number.listed = False
        number.read_at = now
        number.save()
    if rng.random() < 0.3:
        active = Reroute.objects.filter(status__in=Reroute.ACTIVE).order_by("id").first()
        if active:
            active.status, active.ended_at = Reroute.Status.SUCCEEDED, now
            active.save()


def run_the_script(*, remember: bool, seed_value: int, start, steps: int = 40) -> tuple[list, list, int]:
    """(each evaluation's counts, the decisions it recorded, how many pairs were decided), in a
    transaction rolled back at the end, so that the other way runs from the same start."""
    rng, decided = random.Random(seed_value), [0]
    real_decide = rules.decide

    def counting_decide(*args, **kwargs):
        decided[0] += 1
        return real_decide(*args, **kwargs)

    rules.decide = counting_decide
    try:
        with transaction.atomic():
            ids = seed(rng, start)
            now, counts, recorded, seen = start, [], [], 0
            fired_before = Reroute.objects.order_by("id").values_list("id", flat=True).last() or 0
            for _ in range(steps):
                now += timedelta(seconds=rng.choice([0, 5, 20, 45, 90]))
                change_the_fleet(rng, ids, now)
                if not remember:
                    rules.rules_forget()
                counts.append(rules.rules_evaluate(now=now))
                for fired in Reroute.objects.filter(id__gt=fired_before):  # fired "as of" now
                    fired.created_at, fired_before = now, fired.pk
                    fired.save(update_fields=["created_at"])
                new = RuleDecision.objects.filter(id__gt=seen)
                recorded.append(sorted(new.values_list("rule__name", "source_id", "outcome", "message")))
                seen = max([seen, *new.values_list("id", flat=True)])
            transaction.set_rollback(True)
    finally:
        rules.decide = real_decide
        rules.rules_forget()
    return counts, recorded, decided[0]


@pytest.mark.parametrize("seed_value", [1, 2, 3])
def test_an_evaluation_that_remembers_decides_what_one_that_reads_everything_decides(settings, seed_value):
    settings.RULES_MINUTE_SECONDS = 60
    start = timezone.now().replace(microsecond=0)
    counts, recorded, decided = run_the_script(remember=True, seed_value=seed_value, start=start)
    counts_afresh, recorded_afresh, decided_afresh = run_the_script(remember=False, seed_value=seed_value,
                                                                    start=start)
    assert recorded == recorded_afresh
    assert counts == counts_afresh
    outcomes = {row[2] for step in recorded for row in step}
    assert {Outcome.WAITING, Outcome.COOLING_DOWN, Outcome.CLEARED, Outcome.FIRED, Outcome.WOULD_FIRE} <= outcomes
    assert decided < decided_afresh / 2  # the memory was used: most pairs were not decided again


def evaluating_pool(manager) -> Rule:
    """A dry-run overflow rule over one number, over its threshold now, with a healthy target."""
    now = timezone.now()
    for device_id, total in (("a" * 24, 80), ("b" * 24, 0)):
        Number.objects.create(device_id=device_id, alias=device_id[:1].upper(), account_status="operative",
                              session_status="online", can_deliver=True, state_since=now, listed_at=now,
                              queue_status="active", queue_total=total, read_at=now)
    return Rule.objects.create(name="Overflow", owner=manager, owner_username="manager", enabled=True,
                               dry_run=True, condition="overflow", sources=["a" * 24], targets=["b" * 24],
                               minutes=0, messages=50, cooldown_minutes=30)


def test_it_reads_the_rules_memory_again_after_another_process_evaluated(manager):
    overflow = evaluating_pool(manager)
    assert rules.rules_evaluate() == {Outcome.WOULD_FIRE: 1}
    # Another process evaluates and ends: say it fired and is cooling down.
    RuleWatch.objects.filter(rule=overflow).update(cooldown_until=timezone.now() + timedelta(hours=1),
                                                   last_outcome=Outcome.COOLING_DOWN)
    MonitorState.objects.update(evaluation_last="another-process-evaluation")
    assert rules.rules_evaluate() == {Outcome.COOLING_DOWN: 1}


def test_it_reads_the_rules_memory_again_after_an_evaluation_that_died_midway(manager):
    overflow = evaluating_pool(manager)
    assert rules.rules_evaluate() == {Outcome.WOULD_FIRE: 1}
    assert rules._take_lease("dying-evaluation") is not None
    RuleWatch.objects.filter(rule=overflow).update(cooldown_until=timezone.now() + timedelta(hours=1),
                                                   last_outcome=Outcome.COOLING_DOWN)
    MonitorState.objects.update(evaluation_until=timezone.now() - timedelta(seconds=1))  # its lease ran out
    assert rules.rules_evaluate() == {Outcome.COOLING_DOWN: 1}


def test_it_forgets_when_a_rule_changed(manager):
    overflow = evaluating_pool(manager)
    assert rules.rules_evaluate() == {Outcome.WOULD_FIRE: 1}
    rules.rule_switch(rule=overflow, enabled=True, dry_run=False)
    assert rules.rules_evaluate() == {Outcome.FIRED: 1}
    assert Reroute.objects.get().rule == overflow


def test_it_reads_the_rule_again_when_its_owner_was_deleted(manager):
    now = timezone.now()
    overflow = evaluating_pool(manager)
    rules.rule_switch(rule=overflow, enabled=True, dry_run=False)
    Rule.objects.filter(pk=overflow.pk).update(minutes=1)
    assert rules.rules_evaluate(now=now) == {Outcome.WAITING: 1}
    manager.delete()  # the rule stays, its owner's name kept
    assert rules.rules_evaluate(now=now + timedelta(minutes=2)) == {Outcome.FIRED: 1}
    fired = Reroute.objects.get()
    assert fired.requested_by is None and fired.requested_by_username == "manager"


def test_it_decides_again_for_a_source_a_target_can_no_longer_take_when_only_the_target_changed(manager):
    now = timezone.now()
    for device_id, total in (("a" * 24, 80), ("b" * 24, 0)):
        Number.objects.create(device_id=device_id, alias=device_id[:1].upper(), account_status="operative",
                              session_status="online", can_deliver=True, state_since=now, listed_at=now,
                              queue_status="active", queue_total=total, read_at=now)
    fields = {"owner": manager, "owner_username": "manager", "enabled": True, "dry_run": True,
              "condition": "overflow", "minutes": 0, "cooldown_minutes": 30}
    Rule.objects.create(name="A overflows to B", sources=["a" * 24], targets=["b" * 24], messages=50, **fields)
    Rule.objects.create(name="B overflows", sources=["b" * 24], targets=["a" * 24], messages=100, **fields)
    assert rules.rules_evaluate(now=now) == {Outcome.WOULD_FIRE: 1}  # B would hold 80, under its 100
    Number.objects.filter(device_id="b" * 24).update(queue_total=30, read_at=now)  # B read again: 110 afterwards
    assert rules.rules_evaluate(now=now + timedelta(seconds=10)) == {Outcome.NO_HEALTHY_TARGET: 1}
    decision = RuleDecision.objects.filter(rule__name="A overflows to B").order_by("-id").first()
    assert "would hold 110 messages afterwards, over rule “B overflows”'s 100" in decision.message
