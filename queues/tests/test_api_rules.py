"""The API's failover rules: list them; enable (live or dry run) and disable one, through queues/rules.py."""

import json

import pytest
from django.test import Client

from queues import tokens
from queues.models import Rule
from sparkbot_sandbox.seed import SALES_1, SALES_2

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def rule(db):
    return Rule.objects.create(name="Sales failover", owner_username="manager", sources=[SALES_1],
                               targets=[SALES_2])


def call(user, method, path, body=None):
    raw = tokens.token_create(owner=user, name="rules").secret
    data = {"data": json.dumps(body), "content_type": "application/json"} if body is not None else {}
    return Client().generic(method, path, HTTP_AUTHORIZATION=f"Bearer {raw}", **data)


def test_it_lists_the_rules_for_whoever_may_read_them(lead, rule):
    (listed,) = call(lead, "GET", "/api/v1/rules").json()
    assert listed["name"] == "Sales failover" and listed["sources"] == [SALES_1] and listed["targets"] == [SALES_2]
    assert listed["enabled"] is False and listed["dry_run"] is True and listed["condition"] == "cannot_deliver"


def test_it_enables_a_rule_live_or_in_dry_run_and_disables_it(manager, rule):
    enabled = call(manager, "POST", f"/api/v1/rules/{rule.pk}/enable").json()
    assert enabled["enabled"] is True and enabled["dry_run"] is True  # as it was
    live = call(manager, "POST", f"/api/v1/rules/{rule.pk}/enable?dry_run=false").json()
    assert live["dry_run"] is False
    rule.refresh_from_db()
    assert rule.enabled and not rule.dry_run
    assert call(manager, "POST", f"/api/v1/rules/{rule.pk}/disable").json()["enabled"] is False
    rule.refresh_from_db()
    assert not rule.enabled


def test_it_lets_only_those_who_change_rules_switch_them(lead, manager, rule):
    refused = call(lead, "POST", f"/api/v1/rules/{rule.pk}/enable")
    assert refused.status_code == 403 and refused.json()["detail"] == "Your account may not change failover rules."
    rule.refresh_from_db()
    assert not rule.enabled
    assert call(manager, "POST", "/api/v1/rules/999999/disable").status_code == 404
