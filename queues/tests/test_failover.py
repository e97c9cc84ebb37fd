"""Failover end to end: two real Celery workers, each with beat, run the monitor and evaluate the rules
against the sandbox; a rule's "minute" lasts one second here (RULES_MINUTE_SECONDS)."""

import time

import pytest

from queues.models import Reroute, Rule, RuleDecision
from sparkbot_sandbox.seed import SALES_1, SALES_4

pytestmark = pytest.mark.django_db(transaction=True)
FAST = {"MONITOR_CYCLE_SECONDS": "1", "MONITOR_DEVICES_SECONDS": "1", "MONITOR_CALLS_PER_MINUTE": "6000",
        "RULES_MINUTE_SECONDS": "1"}


@pytest.fixture(scope="module")
def workers(worker_on_broker, sandbox_server):
    """Two worker processes, each with its own beat: cycles and evaluations race, and must act once."""
    return [worker_on_broker(sandbox_server.api_url, env=FAST, beat=True) for _ in range(2)]


@pytest.fixture
def fleet(sandbox, settings):
    settings.RULES_MINUTE_SECONDS = 1
    return sandbox


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def failover(manager, **fields) -> Rule:
    return Rule.objects.create(**{"name": "Sales failover", "owner": manager, "owner_username": "manager",
                                  "enabled": True, "dry_run": False, "sources": [SALES_1], "targets": [SALES_4],
                                  "minutes": 4, "messages": 1, "cooldown_minutes": 600, **fields})


def test_it_moves_the_queue_of_a_number_gone_offline_once_it_has_waited_its_minutes(workers, fleet, manager):
    rule = failover(manager)
    time.sleep(1.5)  # the monitor knows the fleet online
    fleet.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    offline_at = time.monotonic()
    wait_for(lambda: Reroute.objects.filter(rule=rule, status="succeeded").first(), 20, "the failover")
    assert time.monotonic() - offline_at >= 4  # it waited its 4 "minutes"
    assert fleet.queue(SALES_4)["total"] == 12 and fleet.queue(SALES_1)["total"] == 0
    time.sleep(2)  # more cycles and evaluations, in both workers
    assert Reroute.objects.count() == 1 and len(fleet.calls(method="PATCH")) == 1
    assert rule.decisions.filter(outcome=RuleDecision.Outcome.FIRED).count() == 1
    assert "waiting" in rule.decisions.values_list("outcome", flat=True)


def test_it_does_not_fire_for_a_connection_that_flaps_within_its_minutes(workers, fleet, manager):
    rule = failover(manager, minutes=4)
    time.sleep(1.5)
    for _ in range(3):  # offline 2.5 s, online 2 s, three times: never 4 s in a row
        fleet.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
        time.sleep(2.5)
        fleet.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "online"})
        time.sleep(2)
    assert not Reroute.objects.exists() and fleet.calls(method="PATCH") == []
    assert rule.decisions.filter(outcome=RuleDecision.Outcome.WAITING).exists()
