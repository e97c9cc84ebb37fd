"""Hostile text (aliases, notes, SparkBot's messages) shows as text on every page, in Chromium."""

import csv
import io
import json
import time

import pytest
from playwright.sync_api import expect

from queues import devices, services
from queues.tests.browser import choose_number
from sparkbot_sandbox.seed import HTML_ALIAS_DEVICE, IMG_ALIAS_DEVICE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NOTE = "<script>alert('note')</script><img src=x onerror=alert('note')>"
API_MESSAGE = "<img src=x onerror=alert('api')><script>alert('api')</script>"


@pytest.fixture
def hostile_reroute(sandbox, admin_user):
    device_list = devices.device_list()
    sandbox.fault(route="route_queue", status=409, times=1,
                  body=f'{{"status": 409, "message": "{API_MESSAGE}", "errorCode": "refused"}}')
    reroute = services.reroute_request(source=device_list.get(HTML_ALIAS_DEVICE),
                                       target=device_list.get(IMG_ALIAS_DEVICE), note=NOTE, user=admin_user)
    services.reroute_execute(reroute_id=reroute.pk)  # does nothing if a worker another module started took it
    deadline = time.monotonic() + 15
    while reroute.is_active and time.monotonic() < deadline:
        time.sleep(0.05)
        reroute.refresh_from_db()
    assert API_MESSAGE in reroute.error_message
    return reroute


def pages(reroute) -> list[str]:
    return [
        "/reroute/",
        f"/reroute/preview/?source={HTML_ALIAS_DEVICE}",
        f"/reroutes/{reroute.pk}/",
        "/history/",
        "/history/?q=script",
        f"/history/?device={HTML_ALIAS_DEVICE}&status=failed",
        "/admin/queues/reroute/",
        "/admin/queues/reroute/?q=script",
        f"/admin/queues/reroute/{reroute.pk}/change/",
        "/admin/queues/rerouteevent/",
        f"/admin/queues/rerouteevent/{reroute.events.last().pk}/change/",
    ]


EXPORTS = ["/history/export.csv", "/history/export.csv?q=script", "/history/export.jsonl"]
FORMULA_STARTS = ("=", "+", "-", "@")


def exported_cells(text: str, path: str) -> list[str]:
    if path.startswith("/history/export.jsonl"):
        return [value for line in text.splitlines() for value in json.loads(line).values() if isinstance(value, str)]
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_it_shows_hostile_text_as_text_on_every_page(browser_as, live_server, admin_user, hostile_reroute):
    page = browser_as("admin")  # which also fails the test if any dialog opened

    for path in pages(hostile_reroute):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        assert page.locator("img[src='x']").count() == 0, path
        assert page.locator("script", has_text="alert").count() == 0, path
        assert page.locator("b", has_text="Bold").count() == 0, path
    for path in EXPORTS:  # not HTML: the text as written, and no cell a spreadsheet would run
        export = page.request.get(f"{live_server.url}{path}")
        assert export.status == 200 and "attachment" in export.headers["content-disposition"], path
        cells = exported_cells(export.text(), path)
        assert NOTE in cells and any(API_MESSAGE in cell for cell in cells), path
        if path.startswith("/history/export.csv"):
            assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)], path
            assert "'" + hostile_reroute.source_phone in cells, path
    detail = page.goto(f"{live_server.url}/reroutes/{hostile_reroute.pk}/")
    assert detail.ok
    expect(page.locator("dl.facts")).to_contain_text(NOTE)
    expect(page.locator(".outcome")).to_contain_text(API_MESSAGE)

    page.goto(f"{live_server.url}/reroute/")
    choose_number(page, "WhatsApp number", "Bold", expected="<b>Bold</b>")
    expect(page.locator("#reroute-preview")).to_contain_text("<b>Bold</b>")
    assert page.locator("#reroute-preview b").count() == 0
