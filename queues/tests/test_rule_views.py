"""Failover rules' pages through Django's test client: the list with live states, a rule's page, the form."""

from datetime import timedelta

import pytest
from django.utils import timezone

from queues import monitor, rule_pages
from queues.models import Reroute, Rule, RuleDecision
from sparkbot_sandbox.seed import OFFLINE_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def rule_form(**overrides) -> dict:
    form = {"name": "Sales failover", "enabled": "on", "dry_run": "on", "sources": "Sales-1\n+447700900003",
            "exceptions": "", "condition": "cannot_deliver", "minutes": "5", "messages": "1",
            "target_kind": "fallback", "targets": f"Sales-4\n{SALES_2}", "cooldown_minutes": "30",
            "active_from": "", "active_until": "", "time_zone": "Europe/Lisbon"}
    return {**form, **overrides}


def test_it_creates_a_rule_from_numbers_named_by_alias_phone_or_id(manager_client, sandbox, manager):
    response = manager_client.post("/rules/new/", rule_form())
    rule = Rule.objects.get()
    assert response["Location"] == f"/rules/{rule.pk}/"
    assert (rule.sources, rule.targets) == ([SALES_1, SALES_3], [SALES_4, SALES_2])
    assert (rule.owner, rule.owner_username, rule.enabled, rule.dry_run) == (manager, "manager", True, True)
    page = manager_client.get(f"/rules/{rule.pk}/").content.decode()
    assert "Sales-1, Sales-3" in page and "Sales-4, Sales-2" in page and "Dry run" in page


@pytest.mark.parametrize("overrides, field, message", [
    ({"targets": "Sales-1"}, "targets", "Sales-1 is also watched by this rule: a rule never moves a number's queue "
                                        "to itself."),
    ({"all_sources": "on", "targets": "Sales-4"}, "targets", "Add it to the exceptions."),
    ({"minutes": "1441"}, "minutes", "Ensure this value is less than or equal to 1440."),
    ({"minutes": "-1"}, "minutes", "Ensure this value is greater than or equal to 0."),
    ({"messages": "0"}, "messages", "Ensure this value is greater than or equal to 1."),
    ({"target_kind": "pool", "targets": ""}, "targets", "Give at least one target number."),
    ({"target_kind": "one", "targets": "Sales-4\nSales-2"}, "targets", "Give exactly one target number"),
    ({"sources": ""}, "sources", "Give the numbers this rule watches, or make every number a source."),
    ({"sources": "Nobody"}, "sources", "Line 1: No number in SparkBot's device list is called “Nobody”"),
    ({"active_from": "08:00"}, "active_until", "Give both times of the active hours, or neither."),
    ({"targets": "Sales-4\nBanned Line\nBilling Desk"}, "targets",
     "Banned Line, Billing Desk cannot receive a queue: their SparkBot statuses are “banned”, “disabled”."),
])
def test_it_explains_what_is_wrong_with_a_rule_and_saves_nothing(manager_client, sandbox, overrides, field, message):
    response = manager_client.post("/rules/new/", rule_form(**overrides))
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert message in errors
    assert "The rule was not saved" in response.content.decode()
    assert Rule.objects.count() == 0


def test_it_lets_a_lead_read_rules_but_not_change_them(client, lead, sandbox):
    rule = Rule.objects.create(name="Night", owner_username="manager", sources=[SALES_1], targets=[SALES_4])
    client.force_login(lead)
    assert client.get("/rules/").status_code == 200
    page = client.get(f"/rules/{rule.pk}/").content.decode()
    assert "Night" in page and "/edit/" not in page and 'name="enabled"' not in page
    assert client.post(f"/rules/{rule.pk}/switch/", {"enabled": "true"}).status_code == 403


def test_it_shows_each_rules_live_state(manager_client, sandbox, manager, settings):
    settings.MONITOR_CALLS_PER_MINUTE = 6000
    waiting = Rule.objects.create(name="Waits", owner=manager, owner_username="manager", enabled=True, dry_run=False,
                                  sources=[OFFLINE_DEVICE], targets=[SALES_4], minutes=10)
    cooling = Rule.objects.create(name="Cools", owner=manager, owner_username="manager", enabled=True,
                                  dry_run=False, sources=[SALES_3], targets=[SALES_4], minutes=0,
                                  condition="overflow", messages=30)
    Rule.objects.create(name="Tries", owner_username="manager", enabled=True, sources=[SALES_2], targets=[SALES_4])
    Rule.objects.create(name="Sleeps", owner_username="manager", sources=[SALES_2], targets=[SALES_4])
    monitor.monitor_cycle()  # reads the sandbox, then evaluates
    page = manager_client.get("/rules/").content.decode()
    assert "waiting 10 min more" in page or "waiting 9 min" in page
    assert "cooling down until" in page and Reroute.objects.filter(rule=cooling).count() == 1
    assert "dry run" in page and "disabled" in page
    detail = manager_client.get(f"/rules/{waiting.pk}/").content.decode()
    assert "Café Zürich — Kundendienst offline for" in detail and "Waiting" in detail


def test_it_enables_a_rule_for_real_and_disables_it(manager_client, sandbox, manager):
    rule = Rule.objects.create(name="Try", owner=manager, owner_username="manager", sources=[SALES_1],
                               targets=[SALES_4])
    manager_client.post(f"/rules/{rule.pk}/switch/", {"enabled": "true", "dry_run": "false"})
    rule.refresh_from_db()
    assert (rule.enabled, rule.dry_run) == (True, False)
    manager_client.post(f"/rules/{rule.pk}/switch/", {"enabled": "false", "next": "list"})
    rule.refresh_from_db()
    assert (rule.enabled, rule.dry_run) == (False, False)


def test_it_pages_a_rules_decisions(manager_client, sandbox):
    rule = Rule.objects.create(name="Busy", owner_username="m", sources=[SALES_1], targets=[SALES_4])
    RuleDecision.objects.bulk_create(RuleDecision(rule=rule, source_id=SALES_1, source_alias="Sales-1",
                                                  outcome="waiting", message=f"decision {n}") for n in range(60))
    first = manager_client.get(f"/rules/{rule.pk}/").content.decode()
    assert "decision 59" in first and "decision 9<" not in first and "Older decisions" in first
    oldest_shown = rule.decisions.order_by("-id")[49].pk
    second = manager_client.get(f"/rules/{rule.pk}/?decisions_before={oldest_shown}").content.decode()
    assert "decision 9<" in second and "decision 10<" not in second


def test_it_deletes_a_rule_and_keeps_its_reroutes_with_its_name(manager_client, sandbox, lead):
    rule = Rule.objects.create(name="Gone", owner_username="m", sources=[SALES_1], targets=[SALES_4])
    from queues import devices, services

    listed = devices.device_list()
    reroute = services.reroute_request(source=listed.get(SALES_1), target=listed.get(SALES_4), note="by rule",
                                       user=lead, origin="rule", rule=rule)
    manager_client.post(f"/rules/{rule.pk}/delete/")
    assert not Rule.objects.exists()
    kept = Reroute.objects.get(pk=reroute.pk)
    assert (kept.rule_id, kept.rule_name) == (rule.pk, "Gone")


def test_the_history_filters_by_rule(manager_client, sandbox, lead):
    rule = Rule.objects.create(name="Filter me", owner_username="m", sources=[SALES_1], targets=[SALES_4])
    from queues import devices, services

    listed = devices.device_list()
    mine = services.reroute_request(source=listed.get(SALES_1), target=listed.get(SALES_4), note="by rule",
                                    user=lead, origin="rule", rule=rule)
    services.reroute_request(source=listed.get(SALES_3), target=listed.get(SALES_4), note="by hand", user=lead)
    page = manager_client.get(f"/history/?rule={rule.pk}").content.decode()
    assert f"/reroutes/{mine.pk}/" in page and "by hand" not in page and "Filter me" in page


def test_its_state_says_how_long_a_waiting_rule_still_waits():
    rule = Rule(pk=1, name="r", enabled=True, minutes=5, condition="overflow")
    from queues.models import RuleWatch

    watch = RuleWatch(rule_id=1, source_id=SALES_1, last_outcome="waiting",
                      met_since=timezone.now() - timedelta(minutes=2))
    state = rule_pages._state(rule, [watch], {}, timezone.now())
    assert state.label == "waiting 3 min more"
