"""Failover and overflow rules: evaluate every enabled rule over the monitor's readings, decide, fire.

An evaluation runs after every monitor cycle (and when SparkBot's webhook names a number), one at a
time across all processes (a lease on the MonitorState row). For each source a rule watches it
decides one of: fired, would fire (dry run), waiting (with the time left), cooling down, outside
active hours, source busy, no healthy target, cleared. A decision is recorded, with the readings
that made it, when it differs from the last one for that rule and source. Firing goes through
services.reroute_request (origin "rule"), with every guarantee a manual reroute has.

Speed: the process that made the last evaluation keeps what it worked out (Memory); the next one, if
no other evaluation ran between and no rule changed, decides again only the pairs whose inputs
changed: a number read anew, a source that became busy or free, a rule whose targets changed, a
wait or cooldown that ran out (docs/PERFORMANCE.md).

Safety: the condition must hold without a break for the rule's minutes (the monitor keeps "cannot
deliver since"; overflow keeps its own "since" per rule and source); a target must be able to
deliver now, have an active queue, not be the source of an active reroute, not meet any rule's
condition itself, not be pushed over an overflow rule's threshold, and not send a queue straight
back where a rule brought it from within the cooldown (no ping-pong).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import bulk, dispatch, services
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


@dataclass(slots=True)
class Watch:
    """What one rule remembers of one source between evaluations (a RuleWatch row, without the ORM's cost)."""

    rule_id: int
    source_id: str
    pk: int | None = None
    met_since: datetime | None = None
    cooldown_until: datetime | None = None
    last_outcome: str = ""


WATCH_FIELDS = ("rule_id", "source_id", "pk", "met_since", "cooldown_until", "last_outcome")
WATCH_MEMORY = ["met_since", "cooldown_until", "last_outcome"]
WATCH_ROW_FIELDS = [*WATCH_MEMORY, "last_message", "last_decision"]


@dataclass
class Fleet:
    """Everything one evaluation reads, read once, and what it works out once from that."""

    numbers: dict[str, Reading]
    busy_sources: set[str]
    rule_moves: list[tuple[str, str, datetime]]  # (source, target, when) of recent rule reroutes
    rules: list[Rule]
    watches: dict[tuple[int, str], Watch]
    now: datetime
    rule_keys: list[tuple] = field(default_factory=list)  # (pk, updated_at, owner) of the rules
    minute: timedelta = field(default_factory=lambda: minutes(1))  # a rule's minute, read from settings once
    rows: dict[str, tuple] = field(default_factory=dict)  # device id -> its row as read
    changed: set[str] = field(default_factory=set)  # numbers read anew, or gone, since the memory's evaluation
    meeting: dict[int, list[Reading]] = field(default_factory=dict)  # rule id -> its sources meeting it now
    in_trouble: set[str] = field(default_factory=set)  # numbers that meet some rule's condition now
    overflow_limits: dict[str, Rule | None] = field(default_factory=dict)  # number -> lowest overflow rule
    target_problems: dict[str, str] = field(default_factory=dict)  # number -> why no rule may route to it
    last_rule_move: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (source, target) -> when
    targets_by_rule: dict[int, list[Reading]] = field(default_factory=dict)
    contexts: dict[tuple, tuple[tuple, dict]] = field(default_factory=dict)  # see context()

    def __post_init__(self):
        self.meeting = _meeting_by_rule(self.rules, self.numbers)
        self.in_trouble = {number.device_id for meeting in self.meeting.values() for number in meeting}
        for source, target, when in self.rule_moves:
            self.last_rule_move[source, target] = max(when, self.last_rule_move.get((source, target), when))

    def possible_targets(self, rule: Rule) -> list[Reading]:
        """The rule's targets that are numbers with no problem of their own now, best first: in the
        rule's order, or for a pool the smallest queue first (ties in the rule's order)."""
        if rule.pk not in self.targets_by_rule:
            found = (self.numbers.get(device_id) for device_id in rule.targets)
            possible = [n for n in found if n is not None and not self.target_problem(n)]
            if rule.target_kind == Rule.TargetKind.POOL:
                possible.sort(key=lambda n: n.queue_total or 0)  # a stable sort keeps the rule's order in ties
            self.targets_by_rule[rule.pk] = possible
        return self.targets_by_rule[rule.pk]

    def target_problem(self, target: Reading) -> str:
        """Why no rule may route to this number now, whatever the source; "" if none."""
        if target.device_id not in self.target_problems:
            self.target_problems[target.device_id] = _target_problem(target, self)
        return self.target_problems[target.device_id]

    def context(self, rule: Rule) -> tuple[tuple, dict[str, int | None]]:
        """What, beyond a source's reading and the rule's memory of it, the rule's decisions depend on
        now: whether it is active, each target's own problem and the moves back (the context); and
        for an overflow rule, each possible target's headroom: a source holding fewer messages
        may go there (None: any). Rules alike in these share it."""
        alike = (rule.condition, tuple(rule.targets), rule.cooldown_minutes, rule.active_from, rule.active_until,
                 rule.time_zone)
        if alike not in self.contexts:
            self.contexts[alike] = self._context(rule)
        return self.contexts[alike]

    def _context(self, rule: Rule) -> tuple[tuple, dict[str, int | None]]:
        targets, headrooms = [], {}
        for device_id in rule.targets:
            number = self.numbers.get(device_id)
            problem = self.target_problem(number) if number else None
            targets.append((device_id, problem))
            if rule.condition == Rule.Condition.OVERFLOW and problem == "":
                lowest = self.lowest_overflow_rule(device_id)
                headrooms[device_id] = lowest.messages - (number.queue_total or 0) if lowest else None
        since = self.now - self.minute * rule.cooldown_minutes
        moved_back = sorted(pair for pair, when in self.last_rule_move.items()
                            if when >= since and pair[0] in rule.targets)
        return (in_active_hours(rule, self.now), tuple(targets), tuple(moved_back)), headrooms

    def lowest_overflow_rule(self, device_id: str) -> Rule | None:
        """The overflow rule with the lowest threshold among those covering this number."""
        if device_id not in self.overflow_limits:
            covering = [rule for rule in self.rules
                        if rule.condition == Rule.Condition.OVERFLOW and _covers(rule)(device_id)]
            self.overflow_limits[device_id] = min(covering, key=lambda rule: rule.messages, default=None)
        return self.overflow_limits[device_id]


@dataclass
class Decision:
    """What a rule does about a source. Its sentence and readings are worked out only when asked for:
    most decisions repeat the last one and are not recorded (docs/PERFORMANCE.md)."""

    outcome: str
    explain: Callable[[], tuple[str, dict]]
    target: Reading | None = None
    until: datetime | None = None  # when time alone may change it (the wait or the cooldown is over)

    @cached_property
    def _explained(self) -> tuple[str, dict]:
        return self.explain()

    @property
    def message(self) -> str:
        return self._explained[0]

    @property
    def readings(self) -> dict:
        return self._explained[1]

    def explain_now(self) -> tuple[str, dict]:
        """Work out the sentence and the readings now; they are kept for when they are written."""
        return self._explained


class Settled(NamedTuple):
    """A decision that repeats as long as what it was made from is the same: the source's reading (the
    very object), whether the source is busy, the rule's context and the targets' headroom for the
    messages it holds, and the time before `until`."""

    source: Reading
    busy: bool
    outcome: str
    until: datetime | None


@dataclass
class Memory:
    """What this process worked out in the last evaluation it made. The next one trusts it only when
    no other evaluation ran between the two and no rule changed: then the rules' memory of their
    sources is what this process wrote, and a pair whose inputs did not change decides the same."""

    token: str  # the evaluation's lease token
    now: datetime
    minute: timedelta  # a rule's minute then
    rule_keys: list[tuple]
    rules: list[Rule]
    rows: dict[str, tuple]  # device id -> its row as read
    numbers: dict[str, Reading]
    busy_sources: set[str]
    watches: dict[tuple[int, str], Watch]  # the new rows' ids are known (bulk inserts return them)
    remembered: dict[int, set[str]]
    contexts: dict[int, tuple] = field(default_factory=dict)  # rule id -> its context
    headrooms: dict[int, dict[str, int | None]] = field(default_factory=dict)  # rule id -> its targets' headroom
    settled: dict[int, dict[str, Settled]] = field(default_factory=dict)  # rule id -> source -> decision
    counts: dict[int, Counter] = field(default_factory=dict)  # rule id -> its settled decisions by outcome
    earliest: dict[int, datetime | None] = field(default_factory=dict)  # rule id -> the first `until` (or sooner)
    touched: dict[int, set[str]] = field(default_factory=dict)  # rule id -> sources whose watch it wrote

    def note_written(self, watches: list[Watch]) -> None:
        """The rules' memory of these sources was written: the next evaluation looks at them again."""
        _remember_sources(self.remembered, watches)
        for watch in watches:
            self.touched.setdefault(watch.rule_id, set()).add(watch.source_id)

    def outcomes(self, *, fired: int) -> dict[str, int]:
        """How many sources each outcome was decided for (fired ones are not kept)."""
        counts = Counter({Outcome.FIRED: fired})
        for rule_counts in self.counts.values():
            counts.update(rule_counts)
        return dict(+counts)


_memory: Memory | None = None
_memory_lock = threading.Lock()


def _recall(*, previous_token: str, now: datetime, rule_keys: list[tuple]) -> Memory | None:
    """This process's memory, taken (a failure leaves none), if it may be trusted: this process made
    the evaluation just before this one, no enabled rule changed (`rule_keys`: ids, times of change,
    owners: the owner fires, and may have been deleted), a rule's minute is as long, and time moved on."""
    global _memory
    with _memory_lock:
        memory, _memory = _memory, None
    if (memory is None or memory.token != previous_token or now < memory.now or memory.rule_keys != rule_keys
            or memory.minute != minutes(1)):
        return None
    return memory


def _keep(memory: Memory) -> None:
    global _memory
    with _memory_lock:
        _memory = memory


def rules_forget() -> None:
    """Forget what this process worked out: its next evaluation reads and decides everything."""
    global _memory
    with _memory_lock:
        _memory = None


@dataclass
class Pending:
    """What an evaluation writes at its end, in bulk: the decisions that changed, and the memory of
    sources that moved on without a new decision. Firing is written at once (it starts a reroute)."""

    decided: list[tuple[Rule, Reading, Watch, Decision]] = field(default_factory=list)
    remembered: list[Watch] = field(default_factory=list)
    fired: list[Watch] = field(default_factory=list)  # written already

    @property
    def touched(self) -> list[Watch]:
        return [watch for _rule, _source, watch, _decision in self.decided] + self.remembered + self.fired

    def write(self) -> None:
        with transaction.atomic():
            recorded = RuleDecision.objects.bulk_create(
                [RuleDecision(rule=rule, source_id=source.device_id, source_alias=source.alias,
                              outcome=decision.outcome, message=decision.message, readings=decision.readings)
                 for rule, source, watch, decision in self.decided], batch_size=500)
            _write_watches([watch for _rule, _source, watch, _decision in self.decided], fields=WATCH_ROW_FIELDS,
                           recorded=[{"last_message": decision.message, "last_decision": row}
                                     for (_rule, _source, _watch, decision), row in zip(self.decided, recorded)])
            _write_watches(self.remembered, fields=WATCH_MEMORY)
        # told once, when recorded: a rule would have fired (dry run), or cannot act and a person must
        told = [row for row in recorded if row.outcome in (Outcome.WOULD_FIRE, Outcome.NO_HEALTHY_TARGET)]
        for row in told:
            logger.info("rule %s: %s", row.rule_id, row.message)
        dispatch.rules_have_decided(told)


# Evaluating -----------------------------------------------------------------------------


def rules_evaluate(*, now: datetime | None = None, wait_seconds: float = 0) -> dict[str, int] | None:
    """One evaluation of every enabled rule; None when another process evaluates now (after waiting
    up to `wait_seconds` for it)."""
    rule_keys = bulk.values_rows(Rule.objects.filter(enabled=True).order_by("pk"), ["pk", "updated_at", "owner_id"])
    if not rule_keys:
        return {}  # nothing to read the fleet for (the monitor's cycles end here without rules)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while (previous_token := _take_lease(token)) is None:
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
    ended = False
    try:
        now = now or timezone.now()
        memory = _recall(previous_token=previous_token, now=now, rule_keys=rule_keys)
        fleet = _read_fleet(now, rule_keys, memory)
        remembered = memory.remembered if memory else _remembered_sources(fleet.watches)
        kept = Memory(token=token, now=now, minute=fleet.minute, rule_keys=fleet.rule_keys, rules=fleet.rules,
                      rows=fleet.rows, numbers=fleet.numbers, busy_sources=fleet.busy_sources, watches=fleet.watches,
                      remembered=remembered)
        pending = Pending()
        for rule in fleet.rules:
            _evaluate_rule(rule, fleet, remembered.get(rule.pk, set()), memory, kept, pending)
        pending.write()
        kept.note_written(pending.touched)
        _keep(kept)
        ended = True
        return kept.outcomes(fired=len(pending.fired))
    finally:
        _release_lease(token, ended=ended)


def _evaluate_rule(rule: Rule, fleet: Fleet, remembered: set[str], memory: Memory | None, kept: Memory,
                   pending: Pending) -> None:
    """Decide for each source the rule watches, and keep the decisions in `kept`. A decision the
    memory holds for the same inputs is taken as it is: it was recorded when it was made. When the
    rule's context and the time left it as it was, only the sources whose inputs changed are looked at."""
    context, headrooms = fleet.context(rule)
    kept.contexts[rule.pk], kept.headrooms[rule.pk] = context, headrooms
    before: dict[str, Settled] = {}
    if memory is not None and context == memory.contexts.get(rule.pk):
        before = memory.settled.get(rule.pk, {})
    redo = _headroom_moved(before, memory.headrooms.get(rule.pk, {}), headrooms) if before else set()
    earliest = memory.earliest.get(rule.pk) if before else None
    if before and (earliest is None or fleet.now < earliest):
        settled, counts = dict(before), Counter(memory.counts[rule.pk])
        sources, gone = _sources_to_look_at(rule, fleet, remembered, memory, redo)
        for device_id in gone:
            _settle(settled, counts, device_id, None)
    else:
        settled, counts, earliest = {}, Counter(), None
        sources = _watched_sources(rule, fleet, remembered)
    busy_sources, now = fleet.busy_sources, fleet.now
    for source in sources:
        busy = source.device_id in busy_sources
        known = before.get(source.device_id)
        if (known is None or known.source is not source or known.busy != busy or source.device_id in redo
                or (known.until is not None and now >= known.until)):
            decision = _evaluate_one(rule, source, fleet, pending)
            fired = decision.outcome == Outcome.FIRED  # then decided afresh next time (cooling down, or busy)
            known = None if fired else Settled(source, busy, decision.outcome, decision.until)
        if known is not None and known.until is not None and (earliest is None or known.until < earliest):
            earliest = known.until
        _settle(settled, counts, source.device_id, known)
    kept.settled[rule.pk], kept.counts[rule.pk], kept.earliest[rule.pk] = settled, counts, earliest


def _settle(settled: dict[str, Settled], counts: Counter, device_id: str, known: Settled | None) -> None:
    """Keep (or, with None, drop) a source's decision, and the count of the rule's decisions by outcome."""
    before = settled.pop(device_id, None)
    if before is not None:
        counts[before.outcome] -= 1
    if known is not None:
        settled[device_id] = known
        counts[known.outcome] += 1


def _headroom_moved(settled: dict[str, Settled], before: dict[str, int | None],
                    now: dict[str, int | None]) -> set[str]:
    """The sources whose queue lies between a target's headroom then and now: whether that target
    may take it changed. (A target that became possible or not changed the rule's context.)"""
    bands = [(low, high) for low, high in (sorted((before[t], now[t]), key=_headroom_order)
                                           for t in now if t in before and before[t] != now[t])]
    if not bands:
        return set()
    return {source_id for source_id, known in settled.items()
            if any(_below(low, known.source.queue_total or 0) and not _below(high, known.source.queue_total or 0)
                   for low, high in bands)}


def _headroom_order(headroom: int | None) -> float:
    return math.inf if headroom is None else headroom


def _below(headroom: int | None, total: int) -> bool:
    """Whether `headroom` is at most `total` (None: no limit)."""
    return headroom is not None and headroom <= total


def _sources_to_look_at(rule: Rule, fleet: Fleet, remembered: set[str], memory: Memory,
                        redo: set[str]) -> tuple[list[Reading], list[str]]:
    """The watched sources whose reading, busyness, memory or targets' headroom may have changed
    since the memory's evaluation, and the ids of those no longer watched."""
    covered = _covers(rule)
    maybe = (fleet.changed | (fleet.busy_sources ^ memory.busy_sources) | memory.touched.get(rule.pk, set())
             | redo)
    sources, gone = [], []
    for device_id in sorted(maybe):
        source = fleet.numbers.get(device_id)
        if source is not None and (device_id in remembered or (covered(device_id) and condition_met(rule, source))):
            sources.append(source)
        else:
            gone.append(device_id)
    return sources, gone


def _read_fleet(now: datetime, rule_keys: list[tuple], memory: Memory | None) -> Fleet:
    """The fleet as the monitor last read it; the rules and their memory of each source are the
    memory's, when there is one."""
    if memory is not None:
        rules, watches = memory.rules, memory.watches
    else:
        rules = list(Rule.objects.filter(enabled=True))
        watches = {(row[0], row[1]): Watch(*row)
                   for row in bulk.values_rows(RuleWatch.objects.filter(rule__in=rules), WATCH_FIELDS)}
    longest = max((rule.cooldown_minutes for rule in rules), default=0)
    moves = Reroute.objects.filter(origin=Reroute.Origin.RULE, created_at__gte=now - minutes(longest))
    rows, numbers, changed = _readings(memory)
    return Fleet(
        numbers=numbers,
        rows=rows,
        changed=changed,
        busy_sources=set(Reroute.objects.filter(status__in=Reroute.ACTIVE).values_list("source_id", flat=True)),
        rule_moves=list(moves.values_list("source_id", "target_id", "created_at")),
        rules=rules,
        watches=watches,
        now=now,
        rule_keys=rule_keys,
    )


def _readings(memory: Memory | None) -> tuple[dict[str, tuple], dict[str, Reading], set[str]]:
    """Every listed number's row and reading, and the numbers whose row is not the memory's (read
    anew, or gone). A reading that did not change is the very object the memory holds."""
    known_rows, known = (memory.rows, memory.numbers) if memory else ({}, {})
    rows, numbers, changed = {}, {}, set()
    for row in bulk.values_rows(Number.objects.filter(listed=True), NUMBER_FIELDS):
        device_id = row[0]
        rows[device_id] = row
        if known_rows.get(device_id) == row:
            numbers[device_id] = known[device_id]
        else:
            numbers[device_id] = Reading(*row)
            changed.add(device_id)
    changed.update(known_rows.keys() - rows.keys())
    return rows, numbers, changed


def _meeting_by_rule(rules: list[Rule], numbers: dict[str, Reading]) -> dict[int, list[Reading]]:
    """Rule id -> its sources that meet its condition now. Rules over every number share the work
    of those with the same condition and threshold."""
    meeting, everyone = {}, {}
    for rule in rules:
        if rule.all_sources:
            key = (rule.condition, rule.messages)
            if key not in everyone:
                everyone[key] = [n for n in numbers.values() if condition_met(rule, n)]
            left_out = set(rule.exceptions)
            meeting[rule.pk] = [n for n in everyone[key] if n.device_id not in left_out]
        else:
            candidates = (numbers[s] for s in dict.fromkeys(rule.sources) if s in numbers)
            meeting[rule.pk] = [n for n in candidates if condition_met(rule, n)]
    return meeting


def _remembered_sources(watches: dict[tuple[int, str], Watch]) -> dict[int, set[str]]:
    """Rule id -> the sources it still has a state for (waiting, cooling down, ...)."""
    remembered: dict[int, set[str]] = {}
    _remember_sources(remembered, watches.values())
    return remembered


def _remember_sources(remembered: dict[int, set[str]], watches) -> None:
    for watch in watches:
        if watch.met_since or watch.last_outcome not in ("", Outcome.CLEARED):
            remembered.setdefault(watch.rule_id, set()).add(watch.source_id)
        else:
            remembered.get(watch.rule_id, set()).discard(watch.source_id)


def _watched_sources(rule: Rule, fleet: Fleet, remembered: set[str]) -> list[Reading]:
    """The rule's sources that meet its condition now, and those it still has a state for."""
    meeting = fleet.meeting[rule.pk]
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


def _evaluate_one(rule: Rule, source: Reading, fleet: Fleet, pending: Pending) -> Decision:
    watch = fleet.watches.get((rule.pk, source.device_id))
    if watch is None:
        watch = fleet.watches[rule.pk, source.device_id] = Watch(rule_id=rule.pk, source_id=source.device_id)
    decision = decide(rule, source, watch, fleet)
    if decision.outcome == Outcome.FIRED:
        _fire_and_record(rule, source, watch, decision, fleet.now)  # at once: it starts a reroute
        pending.fired.append(watch)
    elif decision.outcome != watch.last_outcome:
        decision.explain_now()  # in the words of the readings before the memory below moves on
        watch.last_outcome = decision.outcome
        _remember(watch, rule, source, fleet.now)
        pending.decided.append((rule, source, watch, decision))
    elif watch.pk is None or _overflow_clock_moved(rule, source, watch):
        _remember(watch, rule, source, fleet.now)
        pending.remembered.append(watch)
    return decision


def _overflow_clock_moved(rule: Rule, source: Reading, watch: Watch) -> bool:
    """An overflow rule's own "since" starts when the condition is first met, and stops with it."""
    return rule.condition == Rule.Condition.OVERFLOW and (watch.met_since is None) == condition_met(rule, source)


def decide(rule: Rule, source: Reading, watch: Watch, fleet: Fleet) -> Decision:
    """What the rule does about this source now (firing included), with the readings behind it."""
    now = fleet.now

    def readings(**more) -> dict:
        return {"source": source.facts(), "rule": {"condition": rule.condition, "minutes": rule.minutes,
                                                    "messages": rule.messages}, **more}

    def situation() -> str:
        return _situation(rule, source, now, watch)

    if not condition_met(rule, source):
        return Decision(Outcome.CLEARED, lambda: (f"{source.alias} no longer meets the condition.", readings()))
    if watch.cooldown_until and watch.cooldown_until > now:
        cooldown_until = watch.cooldown_until
        return Decision(Outcome.COOLING_DOWN, lambda: (
            f"{situation()}; cooling down until {local_time(cooldown_until, rule)} after the last move.", readings()),
            until=cooldown_until)
    left = fleet.minute * rule.minutes - (now - _met_since(rule, source, watch, now))
    if left > timedelta(0):
        return Decision(Outcome.WAITING, lambda: (f"{situation()}; fires in {duration_words(left)} if it lasts.",
                                                  readings(seconds_left=round(left.total_seconds()))),
                        until=now + left)
    if not in_active_hours(rule, now):
        return Decision(Outcome.OUTSIDE_HOURS, lambda: (
            f"{situation()}; outside the rule's active hours ({_hours(rule)}).", readings()))
    if source.device_id in fleet.busy_sources:
        return Decision(Outcome.SOURCE_BUSY, lambda: (
            f"{situation()}; a reroute of {source.alias} is already in progress.", readings()))
    target, checks = choose_target(rule, source, fleet)
    if target is None:
        return Decision(Outcome.NO_HEALTHY_TARGET, lambda: (
            f"{situation()}; no healthy target: " + "; ".join(f"{t['alias']} {t['why']}" for t in checks())
            + ". Tried again next cycle.", readings(targets=checks())))
    if rule.dry_run:
        return Decision(Outcome.WOULD_FIRE, lambda: (
            f"Would move the queue of {source.alias} to {target.alias} (dry run). {situation()}: rule “{rule.name}”.",
            readings(targets=checks())), target)
    return Decision(Outcome.FIRED, lambda: (f"{situation()}: rule “{rule.name}”", readings(targets=checks())),
                    target)


def _situation(rule: Rule, source: Reading, now: datetime, watch: Watch) -> str:
    """e.g. "Sales-3 offline for 6 min holding 120 messages"."""
    held = f"holding {source.queue_total} {'message' if source.queue_total == 1 else 'messages'}"
    lasted = duration_words(now - _met_since(rule, source, watch, now))
    if rule.condition == Rule.Condition.CANNOT_DELIVER:
        state = source.session_status if source.session_status != "online" else source.account_status
        return f"{source.alias} {state} for {lasted} {held}"
    return f"{source.alias} {held} for {lasted} while online (over {rule.messages})"


def _met_since(rule: Rule, source: Reading, watch: Watch, now: datetime) -> datetime:
    if rule.condition == Rule.Condition.CANNOT_DELIVER:
        return source.undeliverable_since or now
    return watch.met_since or now


# Choosing a target ----------------------------------------------------------------------


def choose_target(rule: Rule, source: Reading, fleet: Fleet) -> tuple[Reading | None, Callable[[], list[dict]]]:
    """The target to fire at (None if no candidate is healthy), and each candidate's check (when asked)."""
    target = next((number for number in fleet.possible_targets(rule)
                   if not _refused_for(rule, source, number, fleet)), None)

    def checks() -> list[dict]:
        checked = []
        for device_id in rule.targets:
            number = fleet.numbers.get(device_id)
            why = unhealthy_because(rule, source, number, fleet) if number else "is no longer a SparkBot number"
            checked.append({"id": device_id, "alias": number.alias if number else device_id, "healthy": not why,
                            "why": why or "can take it", "queue_total": number.queue_total if number else None})
            if not why and rule.target_kind != Rule.TargetKind.POOL:
                break
        return checked

    return target, checks


def unhealthy_because(rule: Rule, source: Reading, target: Reading, fleet: Fleet) -> str:
    """Why this target may not take the source's queue now; "" if it may."""
    if target.device_id == source.device_id:
        return "is the source itself"
    return fleet.target_problem(target) or _refused_for(rule, source, target, fleet)


def _refused_for(rule: Rule, source: Reading, target: Reading, fleet: Fleet) -> str:
    """Why this source's queue may not go to this target, beyond the target's own state; "" if it may."""
    if target.device_id == source.device_id:
        return "is the source itself"
    if rule.condition == Rule.Condition.OVERFLOW:  # never create an overflow a rule would then move on again
        after = (target.queue_total or 0) + (source.queue_total or 0)
        lowest = fleet.lowest_overflow_rule(target.device_id)
        if lowest is not None and after >= lowest.messages:
            return f"would hold {after} messages afterwards, over rule “{lowest.name}”'s {lowest.messages}"
    moved_here = fleet.last_rule_move.get((target.device_id, source.device_id))
    if moved_here is not None and moved_here >= fleet.now - fleet.minute * rule.cooldown_minutes:
        return "sent its queue here by rule within the cooldown (no moving it back and forth)"
    return ""


def _target_problem(target: Reading, fleet: Fleet) -> str:
    if not target.can_deliver:
        return f"cannot deliver now ({target.session_status}, {target.account_status})"
    if target.queue_status != "active":
        return f"has a queue that is {target.queue_status or 'not read yet'}, not active"
    if target.device_id in fleet.busy_sources:
        return "is the source of a reroute in progress"
    if target.device_id in fleet.in_trouble:
        return "meets a rule's condition itself"
    return ""


def in_active_hours(rule: Rule, now: datetime) -> bool:
    if rule.active_from is None or rule.active_until is None:
        return True
    local = now.astimezone(ZoneInfo(rule.time_zone)).time()
    if rule.active_from <= rule.active_until:
        return rule.active_from <= local < rule.active_until
    return local >= rule.active_from or local < rule.active_until  # e.g. 22:00 to 06:00


# Recording and firing -------------------------------------------------------------------


def _fire_and_record(rule: Rule, source: Reading, watch: Watch, decision: Decision, now: datetime) -> None:
    reroute = _fire(rule, source, decision, episode=f"{_iso(_met_since(rule, source, watch, now))}/"
                                                     f"{_iso(watch.cooldown_until)}")
    if reroute is None:
        intended = decision
        decision = Decision(Outcome.SOURCE_BUSY, lambda: (
            f"{intended.message}; a reroute of {source.alias} started meanwhile.", intended.readings))
    else:
        watch.cooldown_until = now + minutes(rule.cooldown_minutes)
    with transaction.atomic():
        recorded = RuleDecision.objects.create(
            rule=rule, source_id=source.device_id, source_alias=source.alias, outcome=decision.outcome,
            message=decision.message, readings=decision.readings, reroute=reroute)
        watch.last_outcome = decision.outcome
        _save_watch(watch, rule, source, now, last_message=decision.message, last_decision=recorded)
    if reroute is not None:
        logger.info("rule %s: %s", rule.pk, decision.message)
        dispatch.rules_have_decided([recorded])


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


def _save_watch(watch: Watch, rule: Rule, source: Reading, now: datetime, **recorded) -> None:
    """Write what the rule now remembers of the source; `recorded`: its last decision and sentence."""
    _remember(watch, rule, source, now)
    _write_watches([watch], fields=[*WATCH_MEMORY, *recorded], recorded=[recorded])


def _remember(watch: Watch, rule: Rule, source: Reading, now: datetime) -> None:
    """Move the rule's memory of the source on: an overflow rule's own "since", cleared when it clears."""
    met = condition_met(rule, source)
    if rule.condition == Rule.Condition.OVERFLOW:
        watch.met_since = (watch.met_since or now) if met else None
    if not met and watch.last_outcome == Outcome.CLEARED:
        watch.met_since = None


def _watch_row(watch: Watch, **recorded) -> RuleWatch:
    return RuleWatch(pk=watch.pk, rule_id=watch.rule_id, source_id=watch.source_id, met_since=watch.met_since,
                     cooldown_until=watch.cooldown_until, last_outcome=watch.last_outcome, **recorded)


def _write_watches(watches: list[Watch], *, fields: list[str], recorded: list[dict] | None = None) -> None:
    """Create the new rows and change `fields` of the others (with `recorded`, each watch's last
    decision and sentence). The new rows' ids are kept on their watches."""
    rows = [_watch_row(watch, **more) for watch, more in zip(watches, recorded or [{}] * len(watches))]
    _write_watch_rows(rows, fields=fields)
    for watch, row in zip(watches, rows):
        watch.pk = row.pk


def _write_watch_rows(rows: list[RuleWatch], *, fields: list[str]) -> None:
    """Rows deleted meanwhile (their rule was enabled again) are not brought back. Elsewhere than on
    PostgreSQL, many at once (an evaluation after rules were enabled) are replaced instead of
    updated: bulk_update's CASE over thousands of rows costs seconds."""
    new, known = [row for row in rows if row.pk is None], [row for row in rows if row.pk is not None]
    if len(known) > 50 and connection.vendor != "postgresql":
        kept = RuleWatch.objects.in_bulk([row.pk for row in known])
        known = [row for row in known if row.pk in kept]  # a rule changed meanwhile forgot the others
        unchanged = [RuleWatch._meta.get_field(name).attname for name in WATCH_ROW_FIELDS if name not in fields]
        for row in known:
            for attname in unchanged:
                setattr(row, attname, getattr(kept[row.pk], attname))
        RuleWatch.objects.filter(pk__in=kept).delete()
        new, known = new + known, []
    RuleWatch.objects.bulk_create(new, batch_size=500)
    bulk.update_by_id(RuleWatch, known, fields)


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


def _take_lease(token: str) -> str | None:
    """Evaluate now, alone: the token of the evaluation before this one if it ended ("" if not);
    None when another evaluation holds the lease. The token is cleared while this one runs, so
    that one that dies midway leaves none behind."""
    now = timezone.now()
    state = MonitorState.objects.filter(pk=MonitorState.SINGLETON)
    previous = state.values_list("evaluation_last", flat=True).first()
    if previous is None:
        MonitorState.objects.get_or_create(pk=MonitorState.SINGLETON)
        previous = ""
    free = Q(evaluation_until__isnull=True) | Q(evaluation_until__lt=now)
    until = now + timedelta(seconds=settings.RULES_EVALUATION_LEASE_SECONDS)
    taken = state.filter(free, evaluation_last=previous).update(
        evaluation_owner=token, evaluation_until=until, evaluation_last="")
    return previous if taken else None


def _release_lease(token: str, *, ended: bool) -> None:
    """Let the next evaluation start; if this one ended, it is the one whose work the next may reuse."""
    last = {"evaluation_last": token if ended else ""}
    MonitorState.objects.filter(pk=MonitorState.SINGLETON, evaluation_owner=token).update(
        evaluation_owner="", evaluation_until=None, **last)


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
    return f"{moment.astimezone(ZoneInfo(rule.time_zone)):%H:%M:%S} ({rule.time_zone})"


def _hours(rule: Rule) -> str:
    return f"{rule.active_from:%H:%M} to {rule.active_until:%H:%M} {rule.time_zone}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
