"""A shift manager's journey in Chromium: create a handover plan, run it, watch it finish."""

import re

import pytest
from playwright.sync_api import expect

from queues.models import HandoverRun
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def test_it_creates_a_plan_and_runs_it(browser_as, live_server, manager, sandbox, celery_worker):
    page = browser_as("manager")
    page.get_by_role("link", name="Handovers").click()
    page.get_by_role("link", name="New plan").click()

    page.get_by_label("Name").fill("Night to Day")
    page.get_by_label("WhatsApp number 1", exact=True).select_option(SALES_3)
    page.get_by_label("Target WhatsApp number 1").select_option(SALES_4)
    page.get_by_label("WhatsApp number 2", exact=True).select_option(SALES_1)
    page.get_by_label("Target WhatsApp number 2").select_option(SALES_2)
    page.get_by_role("button", name="Save plan").click()
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
