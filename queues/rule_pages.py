"""What the rules' pages show: each rule's live state in a few words, its decisions and its reroutes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import rules
from .models import Number, Reroute, Rule, RuleDecision, RuleWatch

Outcome = RuleDecision.Outcome


@dataclass(frozen=True)
class RuleState:
    label: str  # armed, waiting 3 min more, cooling down until 14:20, dry run, disabled
    detail: str
    last: RuleDecision | None


def rule_states(*, of: list[Rule], now: datetime) -> dict[int, RuleState]:
    """Each rule's live state in a few words, from its watches and the monitor's readings."""
    watches = RuleWatch.objects.filter(rule__in=of).select_related("last_decision")
    by_rule: dict[int, list[RuleWatch]] = {}
    for watch in watches:
        by_rule.setdefault(watch.rule_id, []).append(watch)
    sources = {w.source_id for w in watches}
    numbers = {n.device_id: n for n in Number.objects.filter(device_id__in=sources).only(
        "device_id", "alias", "undeliverable_since")}
    return {rule.pk: _state(rule, by_rule.get(rule.pk, []), numbers, now) for rule in of}


def _state(rule: Rule, watches: list[RuleWatch], numbers: dict, now: datetime) -> RuleState:
    decided = [w.last_decision for w in watches if w.last_decision]
    last = max(decided, key=lambda d: d.pk, default=None)
    if not rule.enabled:
        return RuleState("disabled", "It decides nothing until it is enabled.", last)
    for watch in watches:
        number = numbers.get(watch.source_id)
        alias = number.alias if number else watch.source_id
        if watch.cooldown_until and watch.cooldown_until > now:
            return RuleState(f"cooling down until {rules.local_time(watch.cooldown_until, rule)}", alias, last)
        if watch.last_outcome == Outcome.WAITING:
            since = number.undeliverable_since if rule.condition == Rule.Condition.CANNOT_DELIVER and number \
                else watch.met_since
            left = rules.minutes(rule.minutes) - (now - since) if since else rules.minutes(rule.minutes)
            return RuleState(f"waiting {rules.duration_words(max(left, timedelta(0)))} more", alias, last)
    if rule.dry_run:
        return RuleState("dry run", "It records what it would do and routes nothing.", last)
    return RuleState("armed", "Nothing to do now.", last)


def decisions_page(*, rule: Rule, before: int | None, size: int) -> list[RuleDecision]:
    decisions = rule.decisions.select_related("reroute")
    if before:
        decisions = decisions.filter(pk__lt=before)
    return list(decisions.order_by("-id")[:size])


def reroutes_page(*, rule: Rule, before: int | None, size: int) -> list[Reroute]:
    reroutes = Reroute.objects.filter(rule_id=rule.pk)
    if before:
        reroutes = reroutes.filter(pk__lt=before)
    return list(reroutes.order_by("-id")[:size])
