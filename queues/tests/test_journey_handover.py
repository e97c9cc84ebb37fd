"""A shift manager's journey in Chromium: create a handover plan, run it, watch it finish."""

import re

import pytest
from playwright.sync_api import expect

from queues.models import HandoverRun
from queues.tests.browser import choose_number

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def test_it_creates_a_plan_and_runs_it(browser_as, live_server, manager, sandbox, celery_worker):
    page = browser_as("manager")
    page.get_by_role("link", name="Handovers").click()
    page.get_by_role("link", name="New plan").click()

    page.get_by_label("Name").fill("Night to Day")
    choose_number(page, "WhatsApp number 1", "Sales-3")
    choose_number(page, "Target WhatsApp number 1", "Sales-4")
    choose_number(page, "WhatsApp number 2", "Sales-1")
    choose_number(page, "Target WhatsApp number 2", "Sales-2")
    page.get_by_role("button", name="Save plan").first.click()
    expect(page).to_have_url(f"{live_server.url}/handovers/")
    row = page.get_by_role("row", name=re.compile("Night to Day"))
    expect(row).to_contain_text("2")

    row.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/handovers/runs/\d+/$"))
    run_panel = page.locator("#handover-run")
    expect(run_panel).to_contain_text("2 of 2 moves done", timeout=15000)
    expect(run_panel).to_contain_text("49 messages moved")
    expect(run_panel.locator(".badge")).to_have_text("Finished")
    expect(run_panel).to_contain_text("Moved 37 messages from Sales-3 to Sales-4.")
    run = HandoverRun.objects.get()
    assert run.status == "finished" and run.started_by_username == "manager"


def test_a_live_page_keeps_the_keyboard_focus_where_it_was(browser_as, live_server, manager, sandbox):
    from queues import devices, handovers, monitor
    from queues.models import HandoverPlan
    from sparkbot_sandbox.seed import SALES_1, SALES_4

    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_1, SALES_4)], user=manager)
    devices.device_list()  # read before SparkBot slows down: then each of the move's calls takes 0.9 s
    sandbox.set_latency(900)  # so the run stays running a while, and its page polls
    run = handovers.handover_start(plan=plan, user=manager)
    page = browser_as("manager")
    page.goto(f"{live_server.url}/handovers/runs/{run.pk}/")
    page.get_by_role("button", name="Cancel the rest").focus()
    with page.expect_response(lambda r: f"/handovers/runs/{run.pk}/" in r.url):
        pass  # the page's next poll, which swaps the run's panel
    page.wait_for_timeout(300)
    assert page.evaluate("document.activeElement.textContent") == "Cancel the rest", page.inner_text("#handover-run")

    sandbox.set_latency(0)
    monitor.monitor_cycle()
    page.goto(f"{live_server.url}/numbers/")
    page.get_by_role("link", name="Sales-1", exact=True).focus()
    with page.expect_response(lambda r: "/numbers/" in r.url):
        page.evaluate("htmx.trigger('#numbers-live', 'refresh')")
    page.wait_for_timeout(300)
    assert page.evaluate("document.activeElement.textContent") == "Sales-1"
