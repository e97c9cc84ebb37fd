"""A support lead's journey in Chromium: the overview of every number changes live when a number goes
offline and fills up, and "Reroute from here" opens the route page with that number chosen, to a reroute.

A real Celery worker with beat runs the fleet monitor every second against the sandbox over HTTP.
"""

import re
import time

import pytest
from playwright.sync_api import expect

from queues import monitor
from queues.models import Reroute
from queues.tests.browser import choose_number
from sparkbot_sandbox.seed import HTML_ALIAS, SALES_1, SALES_3, SALES_4, SEED_DEVICES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
FAST = {"MONITOR_CYCLE_SECONDS": "1", "MONITOR_DEVICES_SECONDS": "1", "MONITOR_CALLS_PER_MINUTE": "600"}


@pytest.fixture
def monitoring_worker(worker_on_broker, sandbox_server, sandbox):
    """A worker with beat running the monitor every second, stopped before the database is flushed."""
    worker = worker_on_broker(sandbox_server.api_url, env=FAST, beat=True)
    yield worker
    worker.stop()


def test_a_lead_watches_a_number_go_offline_live_and_reroutes_from_there(browser_as, live_server, lead, sandbox,
                                                                          monitoring_worker, settings):
    settings.MONITOR_CYCLE_SECONDS = 1  # the page polls once a monitor cycle
    page = browser_as("lead")
    page.get_by_role("link", name="Numbers").click()
    expect(page).to_have_url(f"{live_server.url}/numbers/")
    row = page.locator(f"#number-{SALES_1}")
    expect(row).to_contain_text("online", timeout=20000)  # the monitor's first cycles, seen by polling
    expect(row.locator(".depth")).to_have_text("12", timeout=10000)
    page.evaluate("window.stillTheSamePage = true")  # gone if the page reloads

    sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    sandbox.set_queue(SALES_1, pending=400)
    expect(row.locator(".session")).to_have_text("offline", timeout=15000)
    expect(row.locator(".depth")).to_have_text("400", timeout=15000)
    expect(row).to_contain_text("cannot deliver")
    expect(row).to_contain_text("UTC (")  # since when, labelled with its zone
    expect(page.locator(".summary .headline")).to_have_text("8 numbers cannot deliver, holding 404 messages.")
    expect(page.locator("table.numbers tbody tr").first).to_have_id(f"number-{SALES_1}")
    assert page.evaluate("window.stillTheSamePage") is True  # htmx swapped it in: no reload

    row.get_by_role("link", name="Reroute from here").click()
    expect(page).to_have_url(f"{live_server.url}/reroute/?source={SALES_1}")
    expect(page.locator("#id_source")).to_have_value(SALES_1)  # the form's field, behind its searchable picker
    expect(page.get_by_label("WhatsApp number", exact=True)).to_have_value(re.compile(r"^Sales-1\b"))
    choose_number(page, "Target WhatsApp number", "Sales-4")
    page.get_by_role("button", name="Reroute", exact=True).click()
    expect(page.locator("section.status")).to_contain_text("Moved 400 messages from Sales-1 to Sales-4.",
                                                           timeout=15000)
    reroute = Reroute.objects.get()
    assert (reroute.source_id, reroute.target_id, reroute.origin, reroute.requested_by_username) == (
        SALES_1, SALES_4, "web", "lead")

    page.get_by_role("link", name="Numbers").click()
    row = page.locator(f"#number-{SALES_1}")
    expect(row.locator(".depth")).to_have_text("0", timeout=15000)
    expect(row.locator("svg g.mark-web title")).to_contain_text(f"Reroute #{reroute.pk}, by hand")
    expect(row.locator("svg g.mark-web title")).to_contain_text("to Sales-4 (succeeded)")


def requests_to(page, path: str) -> list[float]:
    seen = []
    page.on("request", lambda request: request.url.split("?")[0].endswith(path) and seen.append(time.monotonic()))
    return seen


def set_hidden(page, hidden: bool) -> None:
    """What the browser does when the tab goes to the back or comes to the front (headless Chromium stays visible)."""
    page.evaluate("""hidden => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
        Object.defineProperty(document, "visibilityState", {configurable: true,
                                                           get: () => hidden ? "hidden" : "visible"});
        document.dispatchEvent(new Event("visibilitychange"));
    }""", hidden)


@pytest.mark.embedded
def test_it_polls_only_while_the_tab_is_in_front_and_refreshes_on_coming_back(browser_as, live_server, lead, sandbox,
                                                                             settings):
    settings.MONITOR_CYCLE_SECONDS = 1
    page = browser_as("lead")
    page.goto(f"{live_server.url}/numbers/")
    seen = requests_to(page, "/numbers/")
    page.wait_for_timeout(2500)  # (not time.sleep: Playwright delivers page events while it waits)
    assert len(seen) >= 2  # polling every second while in front
    set_hidden(page, True)
    page.wait_for_timeout(200)
    hidden_at = len(seen)
    page.wait_for_timeout(3000)
    assert len(seen) == hidden_at  # three polls cancelled in the back

    settings.MONITOR_CYCLE_SECONDS = 30  # a page that polls every 30 s: only coming back can ask now
    page.goto(f"{live_server.url}/numbers/")
    set_hidden(page, True)
    page.wait_for_timeout(500)
    seen.clear()
    shown_at = time.monotonic()
    set_hidden(page, False)
    page.wait_for_timeout(1000)
    assert len(seen) == 1 and seen[0] - shown_at < 1, seen


@pytest.mark.embedded
def test_it_filters_as_the_lead_types_and_keeps_the_filters_in_the_address(browser_as, live_server, lead, sandbox,
                                                                           settings):
    settings.MONITOR_CALLS_PER_MINUTE = 600
    settings.MONITOR_CYCLE_SECONDS = 10
    monitor.monitor_cycle()  # the monitor's reading, made here against the sandbox
    page = browser_as("lead")
    page.goto(f"{live_server.url}/numbers/")
    rows = page.locator("table.numbers tbody tr")
    expect(rows).to_have_count(len(SEED_DEVICES))
    expect(page.get_by_role("link", name=HTML_ALIAS, exact=True)).to_be_visible()  # shown as text, never run
    page.get_by_label("Search").press_sequentially("sales")  # no Enter: the list follows the typing
    expect(rows).to_have_count(4)
    expect(page).to_have_url(f"{live_server.url}/numbers/?q=sales")
    page.get_by_label("Has queued messages").check()
    expect(rows).to_have_count(2)  # Sales-1 (12) and Sales-3 (37)
    expect(rows.first).to_have_id(f"number-{SALES_3}")
    expect(page).to_have_url(f"{live_server.url}/numbers/?has_messages=1&q=sales")
    page.reload()  # the address alone brings the same view back
    expect(page.get_by_label("Has queued messages")).to_be_checked()
    expect(rows).to_have_count(2)
