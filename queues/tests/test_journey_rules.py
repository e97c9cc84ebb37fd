"""A shift manager's journey in Chromium: a failover rule tried in dry run, then enabled for real."""

import re
import time

import pytest
from playwright.sync_api import expect

from queues.models import Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_4

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
FAST = {"MONITOR_CYCLE_SECONDS": "1", "MONITOR_DEVICES_SECONDS": "1", "MONITOR_CALLS_PER_MINUTE": "6000",
        "RULES_MINUTE_SECONDS": "1"}


@pytest.fixture(scope="module")
def monitoring_worker(worker_on_broker, sandbox_server):
    return worker_on_broker(sandbox_server.api_url, env=FAST, beat=True)


def reload_until(page, text: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in page.content():
            return
        time.sleep(0.5)
        page.reload()
    raise AssertionError(f"{text!r} did not appear")


def test_a_manager_tries_a_rule_in_dry_run_then_enables_it(browser_as, live_server, manager, sandbox,
                                                           monitoring_worker, settings):
    settings.RULES_MINUTE_SECONDS = 1
    page = browser_as("manager")
    page.get_by_role("link", name="Rules").click()
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name").fill("Sales-1 failover")
    page.get_by_label("Enabled").check()
    page.get_by_label("Dry run (record, route nothing)").check()
    page.get_by_label("Sources").fill("Sales-1")
    page.get_by_label("For at least (minutes)").fill("0")
    page.get_by_label("Holding at least (messages)").fill("1")
    page.get_by_label("One number").check()
    page.get_by_label("Targets, in order of preference").fill("Sales-4")
    page.get_by_role("button", name="Save the rule").click()
    expect(page).to_have_url(re.compile(r"/rules/\d+/$"))
    expect(page.get_by_text("Dry run.")).to_be_visible()

    sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    reload_until(page, "Would move the queue of Sales-1 to Sales-4 (dry run).")
    assert not Reroute.objects.exists() and sandbox.calls(method="PATCH") == []

    page.get_by_role("button", name="Enable for real (leave dry run)").click()
    reload_until(page, "Fired")
    page.get_by_role("link", name=re.compile(r"reroute #\d+")).first.click()
    expect(page.locator("body")).to_contain_text("Moved 12 messages from Sales-1 to Sales-4.", timeout=15000)
    reroute = Reroute.objects.get()
    assert (reroute.origin, reroute.rule_name, reroute.requested_by_username) == ("rule", "Sales-1 failover", "manager")
    assert sandbox.queue(SALES_4)["total"] == 12


def test_the_rule_form_shows_each_checkbox_beside_its_label_and_the_dry_run_help_below_it(browser_as, manager,
                                                                                          sandbox):
    page = browser_as("manager")
    page.goto(page.url.replace("/reroute/", "/rules/new/"))
    for label in ("Enabled", "Dry run (record, route nothing)", "Every number is a source"):
        box = page.get_by_label(label).bounding_box()
        text = page.locator("label", has_text=label).bounding_box()
        assert 0 <= text["x"] - (box["x"] + box["width"]) < 24, label  # the label starts right after the box
        assert abs(text["y"] - box["y"]) < box["height"], label  # on the same line
    help_text = page.get_by_text("Try a rule in dry run first")
    label = page.locator("label", has_text="Dry run").bounding_box()
    assert help_text.bounding_box()["x"] == pytest.approx(label["x"], abs=2)
    assert help_text.bounding_box()["y"] >= label["y"] + label["height"] - 1
    expect(page.get_by_label("Dry run (record, route nothing)")).to_have_accessible_description(
        "Try a rule in dry run first: its decisions show what it would have done.")
