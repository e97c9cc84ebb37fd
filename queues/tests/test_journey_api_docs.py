"""The interactive API docs in Debian's Chromium: served from the project's own static files (no CDN), under
the site's Content-Security-Policy (no inline script), listing every operation; and a token made on the
tokens page, shown once."""

import re
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def test_it_shows_the_api_docs_from_its_own_files_under_the_csp(browser_as, live_server, lead, sandbox):
    page = browser_as("lead")
    hosts = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).hostname))
    page.goto(f"{live_server.url}/api/v1/docs")
    expect(page.get_by_text("SparkBot queue router API").first).to_be_visible()
    for summary in ("Start a reroute", "Read one reroute", "List reroutes (the history)", "List the numbers",
                    "Run a handover plan now", "Read a handover run's progress"):
        expect(page.get_by_text(summary, exact=True)).to_be_visible()
    assert hosts == {urlparse(live_server.url).hostname}  # nothing from anywhere else
    # browser_as fails the test on any Content-Security-Policy violation


def test_it_makes_a_token_shown_once(browser_as, live_server, lead, sandbox):
    page = browser_as("lead")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("n8n night shift")
    page.get_by_role("button", name="Make a token").click()
    shown = page.locator("#new-token").inner_text()
    assert re.fullmatch(r"sbd_[0-9a-f]{8}_[\w-]{43}", shown)
    page.goto(f"{live_server.url}/account/tokens/")
    expect(page.locator("#new-token")).to_have_count(0)
    expect(page.get_by_role("cell", name="n8n night shift")).to_be_visible()
