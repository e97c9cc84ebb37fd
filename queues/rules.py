"""Failover and overflow rules: evaluate every enabled rule over the monitor's readings, decide, fire.

An evaluation runs after every monitor cycle (and when SparkBot's webhook names a number), one at a
time across all processes (a lease on the MonitorState row). For each source a rule watches it
decides one of: fired, would fire (dry run), waiting (with the time left), cooling down, outside
active hours, source busy, no healthy target, cleared. A decision is recorded, with the readings
that made it, when it differs from the last one for that rule and source. Firing goes through
services.reroute_request (origin "rule"), with every guarantee a manual reroute has.

Safety: the condition must hold without a break for the rule's minutes (the monitor keeps "cannot
deliver since"; overflow keeps its own "since" per rule and source); a target must be able to
deliver now, have an active queue, not be the source of an active reroute, not meet any rule's
condition itself, not be pushed over an overflow rule's threshold, and not send a queue straight
back where a rule brought it from within the cooldown (no ping-pong).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import dispatch, services
from .models import MonitorState, Number, Reroute, Rule, RuleDecision, RuleWatch
from .sparkbot import Device

logger = logging.getLogger(__name__)
Outcome = RuleDecision.Outcome
NUMBER_FIELDS = ("device_id", "alias", "phone", "account_status", "session_status", "can_deliver",
                 "undeliverable_since", "queue_status", "queue_total", "read_at")


@dataclass(frozen=True)
class Reading:
    """What the monitor last knew of a number (a row of Number, without the ORM's cost)."""

    device_id: str
    alias: str
    phone: str
    account_status: str
    session_status: str
    can_deliver: bool
    undeliverable_since: datetime | None
    queue_status: str
    queue_total: int | None
    read_at: datetime | None

    @property
    def label(self) -> str:
        return f"{self.alias} ({self.phone})" if self.phone else self.alias

    def as_device(self) -> Device:
        return Device(id=self.device_id, alias=self.alias, phone=self.phone, status=self.account_status,
                      session_status=self.session_status)

    def facts(self) -> dict:
        return {"id": self.device_id, "alias": self.alias, "account_status": self.account_status,
                "session_status": self.session_status, "can_deliver": self.can_deliver,
                "queue_status": self.queue_status, "queue_total": self.queue_total,
                "undeliverable_since": _iso(self.undeliverable_since), "read_at": _iso(self.read_at)}


@dataclass
class Fleet:
    """Everything one evaluation reads, read once."""

    numbers: dict[str, Reading]
    busy_sources: set[str]
    rule_moves: list[tuple[str, str, datetime]]  # (source, target, when) of recent rule reroutes
    rules: list[Rule]
    watches: dict[tuple[int, str], RuleWatch]
    now: datetime


@dataclass
class Decision:
    outcome: str
    message: str
    readings: dict = field(default_factory=dict)
    target: Reading | None = None


# Evaluating -----------------------------------------------------------------------------


def rules_evaluate(*, now: datetime | None = None, wait_seconds: float = 0) -> dict[str, int] | None:
    """One evaluation of every enabled rule; None when another process evaluates now (after waiting
    up to `wait_seconds` for it)."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while not _take_lease(token):
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
    try:
        fleet = _read_fleet(now or timezone.now())
        counts: dict[str, int] = {}
        for rule in fleet.rules:
            for source in _watched_sources(rule, fleet):
                outcome = _evaluate_one(rule, source, fleet)
                counts[outcome] = counts.get(outcome, 0) + 1
        return counts
    finally:
        _release_lease(token)


def _read_fleet(now: datetime) -> Fleet:
    numbers = {row[0]: Reading(*row) for row in Number.objects.filter(listed=True).values_list(*NUMBER_FIELDS)}
    rules = list(Rule.objects.filter(enabled=True))
    longest = max((rule.cooldown_minutes for rule in rules), default=0)
    moves = Reroute.objects.filter(origin=Reroute.Origin.RULE, created_at__gte=now - minutes(longest))
    return Fleet(
        numbers=numbers,
        busy_sources=set(Reroute.objects.filter(status__in=Reroute.ACTIVE).values_list("source_id", flat=True)),
        rule_moves=list(moves.values_list("source_id", "target_id", "created_at")),
        rules=rules,
        watches={(w.rule_id, w.source_id): w for w in RuleWatch.objects.filter(rule__in=rules)},
        now=now,
    )


def _watched_sources(rule: Rule, fleet: Fleet) -> list[Reading]:
    """The rule's sources that meet its condition now, and those it still has a state for."""
    covered = _covers(rule)
    meeting = [n for n in fleet.numbers.values() if covered(n.device_id) and condition_met(rule, n)]
    remembered = {source for (rule_id, source), watch in fleet.watches.items()
                  if rule_id == rule.pk and (watch.met_since or watch.last_outcome not in ("", Outcome.CLEARED))}
    extra = [fleet.numbers[s] for s in remembered - {n.device_id for n in meeting} if s in fleet.numbers]
    return meeting + extra


def _covers(rule: Rule):
    if rule.all_sources:
        left_out = set(rule.exceptions)
        return lambda device_id: device_id not in left_out
    chosen = set(rule.sources)
    return chosen.__contains__


def condition_met(rule: Rule, number: Reading) -> bool:
    """The condition, now (its duration is checked apart)."""
    if number.queue_total is None or number.queue_total < rule.messages:
        return False
    if rule.condition == Rule.Condition.CANNOT_DELIVER:
        return not number.can_deliver
    return number.can_deliver


def _evaluate_one(rule: Rule, source: Reading, fleet: Fleet) -> str:
    watch = fleet.watches.get((rule.pk, source.device_id)) or RuleWatch(rule=rule, source_id=source.device_id)
    decision = decide(rule, source, watch, fleet)
    if decision.outcome == Outcome.FIRED or decision.outcome != watch.last_outcome:
        _record(rule, source, watch, decision, fleet.now)
    elif watch.pk is None or _overflow_clock_moved(rule, source, watch):
        _save_watch(watch, rule, source, fleet.now)
    return decision.outcome


def _overflow_clock_moved(rule: Rule, source: Reading, watch: RuleWatch) -> bool:
    """An overflow rule's own "since" starts when the condition is first met, and stops with it."""
    return rule.condition == Rule.Condition.OVERFLOW and (watch.met_since is None) == condition_met(rule, source)


def decide(rule: Rule, source: Reading, watch: RuleWatch, fleet: Fleet) -> Decision:
    """What the rule does about this source now (firing included), with the readings behind it."""
    now = fleet.now
    readings = {"source": source.facts(), "rule": {"condition": rule.condition, "minutes": rule.minutes,
                                                    "messages": rule.messages}}
    if not condition_met(rule, source):
        return Decision(Outcome.CLEARED, f"{source.alias} no longer meets the condition.", readings)
    if watch.cooldown_until and watch.cooldown_until > now:
        return Decision(Outcome.COOLING_DOWN, f"{_situation(rule, source, now, watch)}; cooling down until "
                        f"{local_time(watch.cooldown_until, rule)} after the last move.", readings)
    left = minutes(rule.minutes) - (now - _met_since(rule, source, watch, now))
    if left > timedelta(0):
        return Decision(Outcome.WAITING, f"{_situation(rule, source, now, watch)}; fires in {duration_words(left)} "
                        "if it lasts.", {**readings, "seconds_left": round(left.total_seconds())})
    if not in_active_hours(rule, now):
        return Decision(Outcome.OUTSIDE_HOURS, f"{_situation(rule, source, now, watch)}; outside the rule's "
                        f"active hours ({_hours(rule)}).", readings)
    if source.device_id in fleet.busy_sources:
        return Decision(Outcome.SOURCE_BUSY, f"{_situation(rule, source, now, watch)}; a reroute of "
                        f"{source.alias} is already in progress.", readings)
    target, checked = choose_target(rule, source, fleet)
    readings["targets"] = checked
    if target is None:
        return Decision(Outcome.NO_HEALTHY_TARGET, f"{_situation(rule, source, now, watch)}; no healthy target: "
                        + "; ".join(f"{t['alias']} {t['why']}" for t in checked) + ". Tried again next cycle.",
                        readings)
    reason = f"{_situation(rule, source, now, watch)}: rule “{rule.name}”"
    if rule.dry_run:
        return Decision(Outcome.WOULD_FIRE, f"Would move the queue of {source.alias} to {target.alias} (dry run). "
                        f"{reason}.", readings, target)
    return Decision(Outcome.FIRED, reason, readings, target)


def _situation(rule: Rule, source: Reading, now: datetime, watch: RuleWatch) -> str:
    """e.g. "Sales-3 offline for 6 min holding 120 messages"."""
    held = f"holding {source.queue_total} {'message' if source.queue_total == 1 else 'messages'}"
    lasted = duration_words(now - _met_since(rule, source, watch, now))
    if rule.condition == Rule.Condition.CANNOT_DELIVER:
        state = source.session_status if source.session_status != "online" else source.account_status
        return f"{source.alias} {state} for {lasted} {held}"
    return f"{source.alias} {held} for {lasted} while online (over {rule.messages})"


def _met_since(rule: Rule, source: Reading, watch: RuleWatch, now: datetime) -> datetime:
    if rule.condition == Rule.Condition.CANNOT_DELIVER:
        return source.undeliverable_since or now
    return watch.met_since or now


# Choosing a target ----------------------------------------------------------------------


def choose_target(rule: Rule, source: Reading, fleet: Fleet) -> tuple[Reading | None, list[dict]]:
    """The target to fire at (None if no candidate is healthy), and each candidate's check."""
    checked, healthy = [], []
    for device_id in rule.targets:
        number = fleet.numbers.get(device_id)
        why = unhealthy_because(rule, source, number, fleet) if number else "is no longer a SparkBot number"
        alias = number.alias if number else device_id
        checked.append({"id": device_id, "alias": alias, "healthy": not why, "why": why or "can take it",
                        "queue_total": number.queue_total if number else None})
        if not why:
            healthy.append(number)
            if rule.target_kind != Rule.TargetKind.POOL:
                break  # one number, or the first of the list that can take it
    if not healthy:
        return None, checked
    if rule.target_kind == Rule.TargetKind.POOL:
        return min(healthy, key=lambda n: (n.queue_total, rule.targets.index(n.device_id))), checked
    return healthy[0], checked


def unhealthy_because(rule: Rule, source: Reading, target: Reading, fleet: Fleet) -> str:
    """Why this target may not take the source's queue now; "" if it may."""
    if target.device_id == source.device_id:
        return "is the source itself"
    if not target.can_deliver:
        return f"cannot deliver now ({target.session_status}, {target.account_status})"
    if target.queue_status != "active":
        return f"has a queue that is {target.queue_status or 'not read yet'}, not active"
    if target.device_id in fleet.busy_sources:
        return "is the source of a reroute in progress"
    if any(condition_met(other, target) and _covers(other)(target.device_id) for other in fleet.rules):
        return "meets a rule's condition itself"
    if rule.condition == Rule.Condition.OVERFLOW:
        after = (target.queue_total or 0) + (source.queue_total or 0)
        for other in fleet.rules:  # never create an overflow a rule would then move on again
            if other.condition == Rule.Condition.OVERFLOW and _covers(other)(target.device_id) \
                    and after >= other.messages:
                return f"would hold {after} messages afterwards, over rule “{other.name}”'s {other.messages}"
    cooldown = minutes(rule.cooldown_minutes)
    if any((src, dst) == (target.device_id, source.device_id) and when >= fleet.now - cooldown
           for src, dst, when in fleet.rule_moves):
        return "sent its queue here by rule within the cooldown (no moving it back and forth)"
    return ""


def in_active_hours(rule: Rule, now: datetime) -> bool:
    if rule.active_from is None or rule.active_until is None:
        return True
    local = now.astimezone(ZoneInfo(rule.time_zone)).time()
    if rule.active_from <= rule.active_until:
        return rule.active_from <= local < rule.active_until
    return local >= rule.active_from or local < rule.active_until  # e.g. 22:00 to 06:00


# Recording and firing -------------------------------------------------------------------


def _record(rule: Rule, source: Reading, watch: RuleWatch, decision: Decision, now: datetime) -> None:
    reroute = None
    if decision.outcome == Outcome.FIRED:
        reroute = _fire(rule, source, decision, episode=f"{_iso(_met_since(rule, source, watch, now))}/"
                                                         f"{_iso(watch.cooldown_until)}")
        if reroute is None:
            decision = Decision(Outcome.SOURCE_BUSY, f"{decision.message}; a reroute of {source.alias} started "
                                "meanwhile.", decision.readings)
        else:
            watch.cooldown_until = now + minutes(rule.cooldown_minutes)
    with transaction.atomic():
        recorded = RuleDecision.objects.create(
            rule=rule, source_id=source.device_id, source_alias=source.alias, outcome=decision.outcome,
            message=decision.message, readings=decision.readings, reroute=reroute)
        watch.last_outcome, watch.last_message, watch.last_decision = decision.outcome, decision.message, recorded
        _save_watch(watch, rule, source, now)
    if decision.outcome in (Outcome.FIRED, Outcome.WOULD_FIRE):
        logger.info("rule %s: %s", rule.pk, decision.message)
        dispatch.rule_has_decided(recorded)


def _fire(rule: Rule, source: Reading, decision: Decision, *, episode: str) -> Reroute | None:
    """The reroute, through the same service as a person's (one per source, retried, audited). One
    episode of the condition (since when, and the cooldown before) has one idempotency key: two
    evaluators can never fire it twice."""
    key = uuid.uuid5(uuid.NAMESPACE_URL, f"rule/{rule.pk}/{source.device_id}/{episode}")
    try:
        return services.reroute_request(
            source=source.as_device(), target=decision.target.as_device(), note=decision.message,
            user=rule.owner, username=rule.owner_username, origin=Reroute.Origin.RULE, idempotency_key=key,
            rule=rule)
    except (services.SourceBusy, services.KeyReused):
        return None


def _save_watch(watch: RuleWatch, rule: Rule, source: Reading, now: datetime) -> None:
    met = condition_met(rule, source)
    if rule.condition == Rule.Condition.OVERFLOW:
        watch.met_since = (watch.met_since or now) if met else None
    if not met and watch.last_outcome == Outcome.CLEARED:
        watch.met_since = None
    watch.rule, watch.source_id = rule, source.device_id
    watch.save()


# Rules as people change them ------------------------------------------------------------


def rule_save(*, rule: Rule, user) -> Rule:
    if rule.pk is None:
        rule.owner, rule.owner_username = user, user.get_username()
    rule.save()
    return rule


def rule_switch(*, rule: Rule, enabled: bool, dry_run: bool) -> Rule:
    """Enable, disable, or leave dry run; the rule's memory of its sources starts afresh when enabled."""
    with transaction.atomic():
        if enabled and not rule.enabled:
            rule.watches.filter(cooldown_until__isnull=True).delete()
        rule.enabled, rule.dry_run = enabled, dry_run
        rule.save(update_fields=["enabled", "dry_run", "updated_at"])
    return rule


def rule_delete(*, rule: Rule) -> None:
    rule.delete()  # its decisions go with it; its reroutes keep its id and name


# One evaluation at a time ---------------------------------------------------------------


def _take_lease(token: str) -> bool:
    MonitorState.objects.get_or_create(pk=MonitorState.SINGLETON)
    now = timezone.now()
    free = Q(evaluation_until__isnull=True) | Q(evaluation_until__lt=now)
    until = now + timedelta(seconds=settings.RULES_EVALUATION_LEASE_SECONDS)
    return bool(MonitorState.objects.filter(free, pk=MonitorState.SINGLETON).update(
        evaluation_owner=token, evaluation_until=until))


def _release_lease(token: str) -> None:
    MonitorState.objects.filter(pk=MonitorState.SINGLETON, evaluation_owner=token).update(
        evaluation_owner="", evaluation_until=None)


def on_monitor_cycle_ended(sender, **kwargs) -> None:
    """dispatch.monitor_cycle_ended: evaluate with the readings just taken."""
    rules_evaluate()


def minutes(count: int) -> timedelta:
    """A rule's minutes (RULES_MINUTE_SECONDS long: 60, shortened only by tests)."""
    return timedelta(seconds=count * settings.RULES_MINUTE_SECONDS)


# Words ----------------------------------------------------------------------------------


def duration_words(span: timedelta) -> str:
    seconds = max(0, round(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min" if minutes >= 10 or not seconds else f"{minutes} min {seconds} s"


def local_time(moment: datetime, rule: Rule) -> str:
    return f"{moment.astimezone(ZoneInfo(rule.time_zone)):%H:%M} ({rule.time_zone})"


def _hours(rule: Rule) -> str:
    return f"{rule.active_from:%H:%M} to {rule.active_until:%H:%M} {rule.time_zone}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
