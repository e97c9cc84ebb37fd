"""An admin's journey in Debian's Chromium: filter the history (htmx, the address follows), page through it,
share the address, open one reroute and read its whole story."""

import re

import pytest
from playwright.sync_api import expect

from queues import services
from queues.models import RerouteEvent
from queues.tests.test_history import make_reroute
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history_rows(sandbox, admin_user):
    """60 failed reroutes, a few others, and one reroute run against the sandbox with a retry."""
    for n in range(60):
        make_reroute(user="bob", source=SALES_1, target=SALES_2, note=f"lunch break {n}", status="failed",
                     moved=None, error_code="refused", error_message="SparkBot refused the route.")
    make_reroute(user="carol", source=SALES_4, target=SALES_1, note="weekend")
    # Written as services.reroute_request writes it, without handing it to a task queue: the test runs it.
    reroute = make_reroute(user="lead", source=SALES_3, target=SALES_4, note="Night shift for Sales-3",
                           status="queued")
    RerouteEvent.objects.create(reroute=reroute, kind="requested", message=(
        "lead asked to move the queue of Sales-3 (+447700900003) to Sales-4 (+447700900004)."))
    sandbox.fault(route="route_queue", status=503, times=1)
    assert services.reroute_execute(reroute_id=reroute.pk, attempt=1) is not None  # 503: retry
    services.reroute_execute(reroute_id=reroute.pk, attempt=2)
    reroute.refresh_from_db()
    assert (reroute.status, reroute.attempts, reroute.messages_moved) == ("succeeded", 2, 37)
    return reroute


@pytest.fixture
def signed_in(browser_as, admin_user):
    return browser_as("admin")


def rows(page):
    return page.locator("#history-results tbody tr")


def test_it_filters_the_history_and_opens_a_record(signed_in, live_server, history_rows):
    page = signed_in
    page.get_by_role("link", name="History").click()
    expect(page).to_have_url(f"{live_server.url}/history/")
    expect(rows(page)).to_have_count(50)
    page.evaluate("window.journeyMarker = 'same page'")  # survives only if no full page load happens

    page.get_by_label("Status").select_option("failed")
    expect(page).to_have_url(f"{live_server.url}/history/?status=failed")
    expect(rows(page)).to_have_count(50)
    expect(page.locator("#history-results tbody .badge")).to_have_text(["Failed"] * 50)

    page.get_by_role("link", name="Older ›").click()
    expect(page).to_have_url(re.compile(r"/history/\?status=failed&before=\d+$"))
    expect(rows(page)).to_have_count(10)
    page.get_by_role("link", name="‹ Newer").click()
    expect(page).to_have_url(f"{live_server.url}/history/?status=failed")  # back at the top: the newest page
    expect(rows(page)).to_have_count(50)

    page.get_by_label("Search").press_sequentially("ab", delay=30)
    expect(page.locator("#id_q-errors")).to_contain_text("Type at least 3 characters")
    expect(rows(page)).to_have_count(0)
    page.get_by_label("Search").fill("")
    page.get_by_label("Status").select_option("succeeded")
    page.get_by_label("Search").press_sequentially("night", delay=30)
    expect(page).to_have_url(f"{live_server.url}/history/?status=succeeded&q=night")
    expect(page.locator("#id_q-errors")).to_be_empty()
    expect(rows(page)).to_have_count(1)
    expect(rows(page)).to_contain_text("Night shift for Sales-3")
    assert page.evaluate("window.journeyMarker") == "same page"  # all of it through htmx

    shared = page.context.new_page()  # the address, shared: the same view
    shared.goto(page.url)
    expect(shared.locator("#history-results tbody tr")).to_have_count(1)
    expect(shared.get_by_label("Status")).to_have_value("succeeded")
    expect(shared.get_by_label("Search")).to_have_value("night")
    shared.close()

    page.get_by_role("link", name=f"Reroute #{history_rows.pk}", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/reroutes/{history_rows.pk}/")
    expect(page.locator("h1")).to_have_text(f"Reroute #{history_rows.pk}")
    expect(page.locator("dl.facts")).to_contain_text("Night shift for Sales-3")
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("SparkBot did not answer (503). Retrying in")
    expect(timeline).to_contain_text("Attempt 2 of 4 started.")
    expect(page.locator("table.queue-change")).to_contain_text("Queued messages")
    expect(page.locator(".outcome")).to_have_text("Moved 37 messages from Sales-3 to Sales-4.")
    page.get_by_text("SparkBot's reply to the route call (secrets removed)").click()
    expect(page.locator(".reply pre")).to_contain_text('"moved": 37')

    page.locator("dl.facts").get_by_role("link", name="reroutes of this number").first.click()
    expect(page).to_have_url(f"{live_server.url}/history/?device={SALES_3}")
    expect(page.get_by_label("Device")).to_have_value(SALES_3)
    expect(rows(page)).to_have_count(1)

    page.go_back()
    page.go_back()
    expect(page).to_have_url(f"{live_server.url}/history/?status=succeeded&q=night")
    expect(page.get_by_label("Status")).to_have_value("succeeded")
    expect(rows(page)).to_have_count(1)
