"""A support lead's journey in Debian's Chromium: sign in, pick two numbers, reroute, see the result live."""

import re

import pytest
from playwright.sync_api import expect

from queues.models import Reroute
from queues.tests.browser import choose_number
from sparkbot_sandbox.seed import SALES_3, SALES_4

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signed_in(browser_as, lead, sandbox):
    return browser_as("lead")


def test_it_reroutes_a_queue_and_shows_the_live_result(signed_in, celery_worker, sandbox, live_server):
    page = signed_in
    choose_number(page, "WhatsApp number", "Sales-3")
    expect(page.locator("#reroute-preview")).to_contain_text("Queue: 37 messages")
    choose_number(page, "Target WhatsApp number", "Sales-4")
    page.get_by_label("Note").fill("Sales-3 goes offline tonight")
    page.get_by_role("button", name="Reroute").click()

    status = page.locator("section.status")
    expect(status).to_contain_text("Moved 37 messages from Sales-3 to Sales-4.", timeout=15000)
    expect(status.locator(".badge")).to_have_text("Succeeded")
    reroute = Reroute.objects.get()
    assert (reroute.status, reroute.note, reroute.requested_by_username) == ("succeeded", "Sales-3 goes offline tonight", "lead")
    expect(page).to_have_url(f"{live_server.url}/reroute/")  # htmx: no full page load

    status.get_by_role("link", name=f"Reroute #{reroute.pk}").click()
    expect(page.locator("ol.timeline")).to_contain_text("SparkBot answered: route the queue.")


def test_it_shows_a_failure_in_the_words_of_a_support_lead(signed_in, celery_worker, sandbox):
    page = signed_in
    sandbox.control("POST", f"/devices/{SALES_4}/remove")  # after the page listed it
    choose_number(page, "WhatsApp number", "Bold")
    choose_number(page, "Target WhatsApp number", "Sales-4")
    page.get_by_role("button", name="Reroute").click()
    expect(page.locator("section.status .outcome")).to_have_text(
        "Sales-4 (+447700900004) is no longer a SparkBot device; refresh the device list.", timeout=15000)
    expect(page.locator("script", has_text="alert")).to_have_count(0)


def test_it_explains_a_bad_choice_on_the_form(signed_in, sandbox):
    page = signed_in
    choose_number(page, "WhatsApp number", "Sales-3")
    choose_number(page, "Target WhatsApp number", "Sales-3")
    page.get_by_role("button", name="Reroute").click()
    expect(page.get_by_text("Choose a target number different from the source number.")).to_be_visible()
    assert Reroute.objects.count() == 0


def test_it_refreshes_the_device_list_in_place(signed_in, sandbox):
    page = signed_in
    choose_number(page, "WhatsApp number", "Sales-3")
    sandbox.control("POST", f"/devices/{SALES_4}", json={"alias": "Sales-4 renamed"})
    page.get_by_role("button", name="Refresh devices").click()
    expect(page.locator("#id_target")).to_contain_text("Sales-4 renamed")
    expect(page.locator("#id_source")).to_have_value(SALES_3)
    expect(page.get_by_label("WhatsApp number", exact=True)).to_have_value(re.compile(r"^Sales-3 · "))
    choose_number(page, "Target WhatsApp number", "renamed", expected="Sales-4 renamed")


def test_it_swaps_the_form_back_without_copying_a_resized_note_box(signed_in, celery_worker, sandbox):
    """Dragging the note box's handle gives it an inline style; htmx must not copy that onto the new form,
    which the Content-Security-Policy forbids (browser_as fails the test on the violation)."""
    page = signed_in
    choose_number(page, "WhatsApp number", "Sales-3")
    choose_number(page, "Target WhatsApp number", "Sales-4")
    page.get_by_label("Note").evaluate("note => { note.style.height = '120px' }")  # what the handle does
    page.get_by_role("button", name="Reroute").click()
    expect(page.locator("section.status .badge")).to_have_text("Succeeded", timeout=15000)
    expect(page.get_by_label("Note")).to_have_value("")


def test_it_brings_the_list_of_last_reroutes_up_to_date_when_the_reroute_ends(signed_in, celery_worker, sandbox):
    page = signed_in
    sandbox.set_latency(700)  # the reroute is still running when the page shows it
    choose_number(page, "WhatsApp number", "Sales-3")
    choose_number(page, "Target WhatsApp number", "Sales-4")
    page.get_by_role("button", name="Reroute").click()
    latest = page.locator(".recent-list li").first
    expect(latest).to_contain_text("In progress.")

    expect(page.locator("section.status .badge")).to_have_text("Succeeded", timeout=15000)
    expect(latest.locator(".badge")).to_have_text("Succeeded")
    expect(latest).to_contain_text("Moved 37 messages from Sales-3 to Sales-4.")


def test_its_own_page_brings_the_facts_up_to_date_when_the_reroute_ends(signed_in, celery_worker, sandbox,
                                                                        live_server):
    page = signed_in
    sandbox.set_latency(700)
    choose_number(page, "WhatsApp number", "Sales-3")
    choose_number(page, "Target WhatsApp number", "Sales-4")
    page.get_by_role("button", name="Reroute").click()
    reroute_link = page.locator("section.status header a")
    expect(reroute_link).to_be_visible()
    page.goto(live_server.url + reroute_link.get_attribute("href"))
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("not read")

    expect(page.locator("section.status .badge")).to_have_text("Succeeded", timeout=15000)
    expect(facts).to_contain_text("37; after: 0")
    expect(facts).to_contain_text(re.compile(r"ended .* s in all"))
    expect(facts).not_to_contain_text("not read")
