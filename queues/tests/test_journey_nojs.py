"""Every form works with JavaScript off, in Chromium: sign in, preview and reroute, refresh the devices,
watch a reroute and a handover run end (the pages reload themselves), edit a plan (rows, paste, file),
filter the history, change the password, sign out."""

import re

import pytest
from playwright.sync_api import expect

from queues import handovers
from queues.models import HandoverPlan, HandoverRun, Reroute
from sparkbot_sandbox.seed import OFFLINE_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def held_back(monkeypatch):
    """Reroutes and runs stay where the test puts them: nothing is handed to a worker (one another test of the
    session may have started), so that a page is seen while its reroute or run is still going."""
    from queues import dispatch

    monkeypatch.setattr(dispatch, "reroute_attempt", lambda *args, **kwargs: None)
    monkeypatch.setattr(dispatch, "handover_advance", lambda *args, **kwargs: None)


@pytest.fixture
def without_javascript(browser, live_server):
    """sign_in(username) -> a page of a browser context with JavaScript turned off, signed in by its form."""
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()

    def sign_in(username: str):
        page.goto("/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(f"{username}-password-123")
        page.get_by_label("Password").press("Enter")  # the form's only button
        expect(page).to_have_url(f"{live_server.url}/reroute/")
        return page

    yield sign_in
    context.close()


def test_it_previews_then_reroutes_and_follows_the_result(without_javascript, lead, celery_worker, sandbox,
                                                         live_server):
    page = without_javascript("lead")
    assert page.locator("#id_source-search").count() == 0  # no script: the plain select boxes
    page.get_by_label("WhatsApp number", exact=True).select_option(SALES_3)
    page.get_by_label("Target WhatsApp number").select_option(OFFLINE_DEVICE)
    page.get_by_label("Note").fill("No JavaScript")
    page.get_by_role("button", name="Preview the move").click()
    expect(page.locator(".preview-card")).to_contain_text("Queue: 37 messages")
    expect(page.locator(".warning")).to_have_text(re.compile(r"^Café Zürich — Kundendienst cannot deliver now"))
    assert Reroute.objects.count() == 0
    page.get_by_label("Target WhatsApp number").select_option(SALES_4)
    page.get_by_role("button", name="Preview again").click()
    expect(page.locator(".all-clear")).to_have_text("No warnings: Sales-4 can deliver now.")
    expect(page.get_by_label("Note")).to_have_value("No JavaScript")
    page.get_by_role("button", name="Reroute", exact=True).click()
    reroute = Reroute.objects.get()
    expect(page).to_have_url(f"{live_server.url}/reroutes/{reroute.pk}/")
    expect(page.locator(".outcome")).to_have_text("Moved 37 messages from Sales-3 to Sales-4.", timeout=15000)
    assert reroute.note == "No JavaScript"

    page.goto("/reroute/")
    page.get_by_label("WhatsApp number", exact=True).select_option(SALES_1)
    page.get_by_role("button", name="Refresh devices").click()
    expect(page).to_have_url(f"{live_server.url}/reroute/")
    expect(page.locator(".recent")).to_contain_text(f"#{reroute.pk}")


def test_it_refreshes_a_running_reroute_page_by_itself(without_javascript, lead, sandbox, live_server, held_back):
    from queues import devices, services

    page = without_javascript("lead")
    device_list = devices.device_list()
    reroute = services.reroute_request(source=device_list.get(SALES_3), target=device_list.get(SALES_4), note="",
                                       user=lead)
    page.goto(f"/reroutes/{reroute.pk}/")
    expect(page.get_by_role("link", name="Reload now")).to_be_visible()
    services.reroute_execute(reroute_id=reroute.pk)
    expect(page.locator(".outcome")).to_have_text("Moved 37 messages from Sales-3 to Sales-4.", timeout=10000)
    expect(page.get_by_role("link", name="Reload now")).to_have_count(0)


def test_it_edits_and_runs_a_plan_without_javascript(without_javascript, manager, celery_worker, sandbox,
                                                     live_server, tmp_path):
    page = without_javascript("manager")
    page.goto("/handovers/plans/new/")
    page.get_by_label("Name").fill("No script")
    page.get_by_label("WhatsApp number 1", exact=True).fill("Sales-1")
    page.get_by_label("Target WhatsApp number 1").fill("+447700900004")
    page.get_by_label("Paste moves, one per line").fill("Sales-3, Sales-2\nSales-2, Sales-4")
    page.get_by_role("button", name="Add the pasted moves").click()
    expect(page.locator(".notice-ok")).to_have_text("Added 2 moves. Press “Save plan” to keep them.")
    page.get_by_role("button", name="Move row 3 up").click()
    expect(page.locator(".notice-ok")).to_have_text("Row 3 moved up to row 2.")
    expect(page.get_by_role("button", name="Move row 2 up")).to_be_focused()  # autofocus, no script needed
    page.get_by_role("button", name="Add 5 more rows").click()
    expect(page.get_by_label("WhatsApp number 13", exact=True)).to_be_visible()
    csv_file = tmp_path / "plan.csv"
    csv_file.write_text("source;target\nSales-2;Sales-4\nSales-3;Sales-1\n", encoding="utf-8")
    page.get_by_label("Import the moves from a CSV file").set_input_files(csv_file)
    page.get_by_role("button", name="Import the file").click()
    expect(page.locator(".notice-ok")).to_contain_text("The file's 2 moves are in the plan now")
    page.get_by_label("Name").press("Enter")  # Enter presses the form's first button: Save plan
    expect(page).to_have_url(f"{live_server.url}/handovers/")
    plan = HandoverPlan.objects.get()
    assert list(plan.pairs.values_list("source_id", "target_id")) == [(SALES_2, SALES_4), (SALES_3, SALES_1)]

    page.get_by_role("row", name=re.compile("No script")).get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/handovers/runs/\d+/$"))
    expect(page.locator("#handover-run .badge")).to_have_text("Finished", timeout=20000)
    expect(page.locator("#handover-run")).to_contain_text("2 of 2 moves done")
    assert HandoverRun.objects.get().status == "finished"


def test_it_refreshes_a_running_handover_page_by_itself(without_javascript, manager, sandbox, live_server, held_back):
    from queues import devices, services

    page = without_javascript("manager")
    device_list = devices.device_list()
    plan = handovers.plan_save(plan=HandoverPlan(name="Waits"), pairs=[(SALES_1, SALES_4)], user=manager)
    busy = services.reroute_request(source=device_list.get(SALES_1), target=device_list.get(SALES_2), note="",
                                    user=manager)
    run = handovers.handover_start(plan=plan, user=manager)
    handovers.handover_advance(run_id=run.pk)  # Sales-1 is busy: the run's move waits for it
    try:
        page.goto(f"/handovers/runs/{run.pk}/")
        expect(page.get_by_role("link", name="Reload now")).to_be_visible()
        page.get_by_role("button", name="Cancel the rest").click()
        handovers.handover_advance(run_id=run.pk)  # what the worker does after the cancel, if one runs
        expect(page.locator("#handover-run .badge")).to_have_text("Cancelled", timeout=10000)
        expect(page.get_by_role("link", name="Reload now")).to_have_count(0)
    finally:
        services.reroute_execute(reroute_id=busy.pk)


def test_it_filters_the_history_and_changes_the_password(without_javascript, manager, sandbox, live_server):
    page = without_javascript("manager")
    page.goto("/history/")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/history/\?.*status=failed"))
    page.goto("/accounts/password/")
    page.locator("#id_old_password").fill("manager-password-123")
    page.locator("#id_new_password1").fill("a-much-longer-passphrase-42")
    page.locator("#id_new_password2").fill("a-much-longer-passphrase-42")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
