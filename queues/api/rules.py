"""Failover rules: list them, enable (live or dry run) and disable one. Rules are written by the lead's
capability (queues/rules.py); this only reads them and switches them, through it."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from django.shortcuts import get_object_or_404
from ninja import Field, Path, Query, Router, Schema

from .. import rules
from ..models import Rule
from .schemas import ProblemOut, ValidationProblemOut
from .security import require

router = Router()
ID_MAX = 2**63 - 1
ERRORS = {401: ProblemOut, 403: ProblemOut, 429: ProblemOut}


class RuleOut(Schema):
    id: int
    name: str
    enabled: bool
    dry_run: bool = Field(description="Records what it would do, and routes nothing.")
    condition: Literal["cannot_deliver", "overflow"]
    minutes: int
    messages: int
    all_sources: bool
    sources: list[str]
    exceptions: list[str]
    target_kind: Literal["one", "fallback", "pool"]
    targets: list[str]
    cooldown_minutes: int
    active_from: time | None
    active_until: time | None
    time_zone: str
    owner: str
    updated_at: datetime


def rule_out(rule: Rule) -> dict:
    return {
        "id": rule.pk, "name": rule.name, "enabled": rule.enabled, "dry_run": rule.dry_run,
        "condition": rule.condition, "minutes": rule.minutes, "messages": rule.messages,
        "all_sources": rule.all_sources, "sources": rule.sources, "exceptions": rule.exceptions,
        "target_kind": rule.target_kind, "targets": rule.targets, "cooldown_minutes": rule.cooldown_minutes,
        "active_from": rule.active_from, "active_until": rule.active_until, "time_zone": rule.time_zone,
        "owner": rule.owner_username, "updated_at": rule.updated_at,
    }


@router.get("", url_name="rules", response={200: list[RuleOut], **ERRORS}, summary="List the failover rules",
            operation_id="rule_list")
def rule_list(request):
    require(request, "queues.view_rule", "read the failover rules")
    return [rule_out(rule) for rule in Rule.objects.all()]


@router.post("/{int:rule_id}/enable", url_name="rule_enable",
             response={200: RuleOut, 404: ProblemOut, 422: ValidationProblemOut, **ERRORS},
             summary="Enable a failover rule (live or dry run)", operation_id="rule_enable")
def rule_enable(request, rule_id: int = Path(..., ge=1, le=ID_MAX),
                dry_run: bool | None = Query(None, description="true: record what it would do, route nothing; "
                                                               "false: route. Left out: as the rule is now.")):
    require(request, "queues.change_rule", "change failover rules")
    rule = get_object_or_404(Rule, pk=rule_id)
    dry_run = rule.dry_run if dry_run is None else dry_run
    return rule_out(rules.rule_switch(rule=rule, enabled=True, dry_run=dry_run))


@router.post("/{int:rule_id}/disable", url_name="rule_disable",
             response={200: RuleOut, 404: ProblemOut, 422: ValidationProblemOut, **ERRORS},
             summary="Disable a failover rule", operation_id="rule_disable")
def rule_disable(request, rule_id: int = Path(..., ge=1, le=ID_MAX)):
    require(request, "queues.change_rule", "change failover rules")
    rule = get_object_or_404(Rule, pk=rule_id)
    return rule_out(rules.rule_switch(rule=rule, enabled=False, dry_run=rule.dry_run))
