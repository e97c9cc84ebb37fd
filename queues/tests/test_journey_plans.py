"""A shift manager fills a big plan in Chromium: pasted lines, "move every chosen number", a CSV file, rows
moved and removed in place (htmx), a row's number chosen with the keyboard."""

import re

import pytest
from playwright.sync_api import expect

from queues.models import HandoverPlan
from queues.tests.browser import choose_number
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def manager_page(browser_as, manager, sandbox, live_server):
    page = browser_as("manager")
    page.goto(f"{live_server.url}/handovers/plans/new/")
    return page


def row_values(page) -> list[tuple[str, str]]:
    values = page.locator("#pairs tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('input')].map(i => i.value))")
    return [tuple(v) for v in values if any(v)]


def test_it_fills_a_plan_from_pasted_lines(manager_page, live_server):
    page = manager_page
    page.get_by_label("Name").fill("Night to Day")
    page.get_by_label("Paste moves, one per line").fill("Sales-1, Sales-4\nSales-3, Nobody\nSales-2 Sales-4\n")
    page.get_by_role("button", name="Add the pasted moves").click()
    errors = page.locator("#paste-errors")
    expect(errors).to_contain_text("Line 2: No number in SparkBot's device list is called “Nobody”")
    expect(errors).to_contain_text("Line 3: give two numbers separated by a comma")
    expect(errors).to_be_focused()
    assert row_values(page) == []
    page.get_by_label("Paste moves, one per line").fill("Sales-1, Sales-4\nSales-3, +447700900002\n"
                                                        "\"Sales-2\"\tSales-4\n")
    page.get_by_role("button", name="Add the pasted moves").click()
    expect(page.locator(".notice-ok")).to_have_text("Added 3 moves. Press “Save plan” to keep them.")
    assert row_values(page) == [("Sales-1", "Sales-4"), ("Sales-3", "Sales-2"), ("Sales-2", "Sales-4")]
    page.get_by_label("In order").check()  # Sales-2 receives and hands over
    page.get_by_role("button", name="Save plan").first.click()
    expect(page).to_have_url(f"{live_server.url}/handovers/")
    expect(page.locator(".notices")).to_contain_text("Saved “Night to Day”: 3 moves.")
    plan = HandoverPlan.objects.get()
    assert list(plan.pairs.values_list("source_id", "target_id")) == [
        (SALES_1, SALES_4), (SALES_3, SALES_2), (SALES_2, SALES_4)]


def test_it_imports_a_plan_from_a_csv_file_and_reorders_it_in_place(manager_page, tmp_path, live_server):
    page = manager_page
    good = tmp_path / "plan.csv"
    good.write_text("source,target\nSales-1,Sales-4\n+447700900003,Sales-4\nSales-2,Sales-4\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("Sales-1,Sales-4\nSales-1,Sales-2\n", encoding="utf-8")
    page.get_by_label("Import the moves from a CSV file").set_input_files(bad)
    page.get_by_role("button", name="Import the file").click()
    expect(page.locator("#import-errors")).to_contain_text("Line 2: Sales-1 already hands its queue over on line 1")
    page.get_by_label("Import the moves from a CSV file").set_input_files(good)
    page.get_by_role("button", name="Import the file").click()
    expect(page.locator(".notice-ok")).to_contain_text("The file's 3 moves are in the plan now")
    assert row_values(page) == [("Sales-1", "Sales-4"), ("Sales-3", "Sales-4"), ("Sales-2", "Sales-4")]

    url = page.url
    page.get_by_role("button", name="Move row 3 up").click()
    expect(page.locator(".notice-ok")).to_have_text("Row 3 moved up to row 2.")
    assert row_values(page) == [("Sales-1", "Sales-4"), ("Sales-2", "Sales-4"), ("Sales-3", "Sales-4")]
    expect(page.get_by_role("button", name="Move row 2 up")).to_be_focused()  # still on the moved row
    page.keyboard.press("Enter")
    expect(page.locator(".notice-ok")).to_have_text("Row 2 moved up to row 1.")
    expect(page.get_by_role("button", name="Move row 1 down")).to_be_focused()
    page.get_by_role("button", name="Remove row 3").click()
    expect(page.locator(".notice-ok")).to_contain_text("Row 3 (Sales-3 → Sales-4) removed.")
    assert row_values(page) == [("Sales-2", "Sales-4"), ("Sales-1", "Sales-4")]
    assert page.url == url  # all in place, no page load
    page.get_by_label("Name").fill("Imported")
    page.get_by_role("button", name="Save plan").first.click()
    expect(page).to_have_url(f"{live_server.url}/handovers/")
    plan = HandoverPlan.objects.get()
    assert list(plan.pairs.values_list("source_id", flat=True)) == [SALES_2, SALES_1]
    download_page = page.context.new_page()
    with download_page.expect_download() as download:
        download_page.goto(f"{live_server.url}/handovers/plans/{plan.pk}/")
        download_page.get_by_role("link", name="Download the moves as CSV").click()
    assert download.value.path().read_text().splitlines()[1].startswith(f"{SALES_2},{SALES_4},Sales-2,")
    download_page.close()


def test_it_moves_every_chosen_number_to_one_and_picks_a_rows_number_by_keyboard(manager_page, live_server):
    page = manager_page
    page.get_by_label("Name").fill("Everyone to Sales-4")
    page.get_by_label("Move every chosen number…").select_option([SALES_1, SALES_2, SALES_3])
    choose_number(page, "…to this number", "Sales-4")
    page.get_by_role("button", name="Add these moves").click()
    expect(page.locator(".notice-ok")).to_have_text("Added 3 moves. Press “Save plan” to keep them.")
    assert row_values(page) == [("Sales-1", "Sales-4"), ("Sales-2", "Sales-4"), ("Sales-3", "Sales-4")]
    target = page.get_by_role("combobox", name="Target WhatsApp number 2")
    target.fill("")
    target.type("+4477009000")
    options = page.locator(f"#{target.get_attribute('aria-controls')}").get_by_role("option")
    expect(options).to_have_count(15)
    target.type("01")
    expect(options).to_have_count(1)
    expect(options).to_have_text(re.compile(r"^Sales-1 · \+447700900001 · can deliver now"))
    target.press("ArrowDown")
    target.press("Enter")
    expect(target).to_have_value("Sales-1")
    target.press("Enter")  # a second Enter on a closed list submits nothing
    assert not HandoverPlan.objects.exists()
    page.get_by_role("button", name="Add 5 more rows").click()
    expect(page.get_by_role("combobox", name="WhatsApp number 4", exact=True)).to_be_focused()  # the first new row
    expect(page.get_by_role("combobox", name="WhatsApp number 13", exact=True)).to_be_visible()
    page.get_by_role("button", name="Save plan").first.click()
    expect(page.locator(".error[role=alert]").first).to_contain_text("Sales-1")  # Sales-1 both gives and takes
    page.get_by_label("In order").check()
    page.get_by_role("button", name="Save plan").first.click()
    expect(page).to_have_url(f"{live_server.url}/handovers/")
    assert list(HandoverPlan.objects.get().pairs.values_list("target_id", flat=True)) == [SALES_4, SALES_1, SALES_4]

