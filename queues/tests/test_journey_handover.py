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
