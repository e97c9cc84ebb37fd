"""A support lead reroutes with the keyboard only, in Chromium: the searchable picker (ARIA combobox), the
preview and its warnings, the Reroute button disabled while it posts, the focus and the announcement."""

import re

import pytest
from playwright.sync_api import expect

from queues.models import Reroute
from sparkbot_sandbox.seed import SALES_3, SALES_4

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

WATCH_DISABLED = """() => {
  window.disabledButtons = [];
  new MutationObserver(changes => changes.forEach(change => {
    if (change.target.disabled) { window.disabledButtons.push(change.target.textContent.trim()); }
  })).observe(document.body, {subtree: true, attributes: true, attributeFilter: ["disabled"]});
}"""


@pytest.fixture
def lead_page(browser_as, lead, sandbox):
    return browser_as("lead")


def focused(page) -> str:
    return page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()")


def test_it_reroutes_with_the_keyboard_only(lead_page, celery_worker, sandbox):
    page = lead_page
    page.evaluate(WATCH_DISABLED)
    page.locator("h1").click()  # start from the page itself, then only keys
    page.keyboard.press("Tab")
    while focused(page) != "id_source-search":
        page.keyboard.press("Tab")
    source = page.get_by_role("combobox", name="WhatsApp number", exact=True)
    expect(source).to_be_focused()
    page.keyboard.type("900003")  # part of Sales-3's phone
    listbox = page.get_by_role("listbox")
    expect(source).to_have_attribute("aria-expanded", "true")
    expect(listbox.get_by_role("option")).to_have_count(1)
    expect(listbox.get_by_role("option")).to_have_text(re.compile(r"^Sales-3 · \+447700900003 · can deliver now"))
    page.keyboard.press("ArrowDown")
    active = listbox.get_by_role("option", selected=True)
    expect(active).to_have_attribute("id", source.get_attribute("aria-activedescendant"))
    page.keyboard.press("Enter")
    expect(source).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#id_source")).to_have_value(SALES_3)
    expect(page.locator("#reroute-preview")).to_contain_text("The queue of Sales-3")

    page.keyboard.press("Tab")
    target = page.get_by_role("combobox", name="Target WhatsApp number")
    expect(target).to_be_focused()
    page.keyboard.type("sal")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Escape")  # closes the list and keeps the box as it was
    expect(target).to_have_attribute("aria-expanded", "false")
    expect(target).to_have_value("")
    page.keyboard.type("sales-4")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#id_target")).to_have_value(SALES_4)
    preview = page.locator("#reroute-preview")
    expect(preview).to_contain_text("Before you reroute")
    expect(preview).to_contain_text("No warnings: Sales-4 can deliver now.")

    page.keyboard.press("Tab")
    expect(page.get_by_label("Note")).to_be_focused()
    page.keyboard.type("Keyboard only")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Reroute")).to_be_focused()
    page.keyboard.press("Enter")

    status = page.locator("section.status")
    expect(status).to_contain_text("Moved 37 messages from Sales-3 to Sales-4.", timeout=15000)
    reroute = Reroute.objects.get()
    expect(status).to_be_focused()  # the focus moved to the result, and stayed there while it changed
    expect(page.locator("#reroute-announcer")).to_have_text("Moved 37 messages from Sales-3 to Sales-4.")
    assert page.evaluate("() => window.disabledButtons") == ["Reroute"]
    assert reroute.note == "Keyboard only"
    expect(page.locator(".recent")).to_contain_text(f"#{reroute.pk}")


def test_it_warns_before_the_move(lead_page, sandbox):
    page = lead_page
    sandbox.set_queue(SALES_3, status="pause")
    sandbox.set_queue(SALES_4, pending=150, processing=0, scheduled=0)
    source = page.get_by_role("combobox", name="WhatsApp number", exact=True)
    source.fill("sales-3")
    source.press("ArrowDown")
    source.press("Enter")
    target = page.get_by_role("combobox", name="Target WhatsApp number")
    target.fill("café")
    target.press("ArrowDown")
    target.press("Enter")
    warnings = page.locator("#reroute-preview .warning")
    expect(warnings).to_have_text([
        re.compile(r"^The queue of Sales-3 is paused \(its status is “pause”\)"),
        re.compile(r"^Café Zürich — Kundendienst cannot deliver now \(its WhatsApp session is offline\)"),
    ])
    target.fill("sales-4")
    target.press("ArrowDown")
    target.press("Enter")
    expect(warnings).to_have_text([
        re.compile(r"^The queue of Sales-3 is paused"),
        "Sales-4 already holds 150 queued messages; the 37 from Sales-3 would wait behind them.",
    ])
    source.fill("sales-2")
    source.press("ArrowDown")
    source.press("Enter")
    expect(warnings.first).to_have_text("Sales-2 has no queued messages: a reroute would move nothing.")
    assert Reroute.objects.count() == 0


def test_it_opens_with_the_source_from_the_address_and_clears_with_escape(browser_as, lead, sandbox, live_server):
    page = browser_as("lead")
    page.goto(f"{live_server.url}/reroute/?source={SALES_3}")
    source = page.get_by_role("combobox", name="WhatsApp number", exact=True)
    expect(source).to_have_value(re.compile(r"^Sales-3 · "))
    expect(page.locator("#reroute-preview")).to_contain_text("The queue of Sales-3")
    source.press("Escape")
    expect(source).to_have_value("")
    expect(page.locator("#id_source")).to_have_value("")
