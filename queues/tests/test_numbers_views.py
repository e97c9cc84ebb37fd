"""The overview (/numbers/) and a number's page (/numbers/<device id>/), through Django's test client,
on numbers the monitor read from the sandbox over HTTP."""

import re
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from queues import devices, fleet, monitor, services
from queues.models import MonitorState, Number
from sparkbot_sandbox.seed import (
    HTML_ALIAS_DEVICE, IMG_ALIAS_DEVICE, OFFLINE_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4, SEED_DEVICES,
)

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def fleet_read(sandbox, settings):
    """The monitor has read every number once, a cycle every 5 s: Sales-1 just went offline holding 400 messages."""
    settings.MONITOR_CALLS_PER_MINUTE = 600
    settings.MONITOR_CYCLE_SECONDS = 5
    monitor.monitor_cycle()
    sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    sandbox.set_queue(SALES_1, pending=400)
    MonitorState.objects.update(devices_read_at=None)
    assert monitor.monitor_cycle().readings == len(SEED_DEVICES)
    return sandbox


def row_of(html: str, device_id: str) -> str:
    return re.search(rf'<tr id="number-{device_id}".*?</tr>', html, re.S).group(0)


def test_it_shows_each_number_with_its_state_since_when_and_its_depth_with_the_readings_age(lead_client, fleet_read):
    html = lead_client.get("/numbers/").content.decode()
    row = row_of(html, SALES_1)
    assert '<a id="number-link-65a000000000000000000001" href="/numbers/65a000000000000000000001/">Sales-1</a>' in row and "+447700900001" in row
    assert "<td>operative</td>" in row and '<span class="session">offline</span>' in row and "cannot deliver" in row
    since = timezone.localtime(Number.objects.get(device_id=SALES_1).state_since)
    assert f"since {since:%H:%M} UTC (0 s)" in row or f"since {since:%H:%M} UTC (1 s)" in row
    assert '<span class="depth">400</span>' in row and re.search(r"read \d s ago", row)
    assert '<svg class="chart spark"' in row
    link = (f'<a id="reroute-from-{SALES_1}" href="/reroute/?source={SALES_1}">Reroute from here'
            '<span class="visually-hidden"> (Sales-1)</span></a>')
    assert link in row
    assert "8 numbers cannot deliver, holding 404 messages." in html
    assert re.search(r"Monitor: last cycle ended \d s ago; device list read \d s ago\.", html)
    assert "Times are in UTC." in html


def test_it_lists_the_numbers_that_need_attention_first(lead_client, fleet_read):
    html = lead_client.get("/numbers/").content.decode()
    order = re.findall(r'<tr id="number-(\w+)"', html)
    assert order[:2] == [SALES_1, OFFLINE_DEVICE] and len(order) == len(SEED_DEVICES)
    assert order.index(SALES_3) == 8  # the first that can deliver: the deepest queue


def test_it_filters_through_the_address(lead_client, fleet_read):
    html = lead_client.get("/numbers/?cannot_deliver=1&has_messages=on&q=+sales  ").content.decode()
    assert re.findall(r'<tr id="number-(\w+)"', html) == [SALES_1]
    assert '<input type="checkbox" name="cannot_deliver" id="id_cannot_deliver" checked>' in html
    assert '<input type="checkbox" name="has_messages" id="id_has_messages" checked>' in html
    assert 'hx-get="/numbers/?cannot_deliver=1&amp;has_messages=1&amp;q=sales"' in html  # polls the canonical query
    assert "Numbers 1–1 of 1 matching the filters" in html
    assert "8 numbers cannot deliver, holding 404 messages." in html  # the summary stays the whole fleet's
    empty = lead_client.get("/numbers/?q=nobody-has-this").content.decode()
    assert "No number matches these filters." in empty


def test_it_explains_a_bad_page_instead_of_guessing(lead_client, fleet_read):
    response = lead_client.get("/numbers/?page=zero")
    html = response.content.decode()
    assert response.status_code == 200 and "Nothing is shown until the filters are fixed." in html
    assert "Page: The page in this link is not valid: start again from page 1." in html and "<tr id=" not in html


def test_it_pages_the_overview_with_plain_links(lead_client, fleet_read, monkeypatch):
    monkeypatch.setattr(fleet, "PAGE_SIZE", 6)
    first = lead_client.get("/numbers/?has_messages=1").content.decode()
    assert '<a href="/numbers/?has_messages=1&amp;page=2" rel="next">Next ›</a>' not in first  # 5 hold messages
    first = lead_client.get("/numbers/").content.decode()
    assert '<a id="numbers-next" href="/numbers/?page=2" rel="next">Next ›</a>' in first and "Page 1 of 3" in first
    third = lead_client.get("/numbers/?page=3").content.decode()
    assert '<a id="numbers-previous" href="/numbers/?page=2" rel="prev">‹ Previous</a>' in third and len(re.findall("<tr id=", third)) == 3


def test_it_answers_htmx_polls_with_the_live_part_and_keeps_the_address(lead_client, fleet_read):
    poll = lead_client.get("/numbers/?cannot_deliver=1", **HTMX, HTTP_HX_TRIGGER="numbers-live")
    html = poll.content.decode()
    assert poll.status_code == 200 and "<html" not in html and "HX-Push-Url" not in poll
    assert html.startswith('<section id="numbers-live" class="numbers-live" data-live')
    assert 'hx-get="/numbers/?cannot_deliver=1" hx-trigger="every 5s, refresh" hx-swap="outerHTML"' in html
    assert "8 numbers cannot deliver" in html and row_of(html, SALES_1)
    typed = lead_client.get("/numbers/?q=Sales&cannot_deliver=on&has_messages=", **HTMX,
                            HTTP_HX_TRIGGER="numbers-filters")
    assert typed["HX-Push-Url"] == "/numbers/?cannot_deliver=1&q=Sales"


def test_it_shows_a_change_at_the_next_poll(lead_client, fleet_read):
    fleet_read.control("POST", f"/devices/{SALES_3}", json={"sessionStatus": "offline"})
    MonitorState.objects.update(devices_read_at=None)
    monitor.monitor_cycle()
    html = lead_client.get("/numbers/", **HTMX).content.decode()
    assert "9 numbers cannot deliver, holding 441 messages." in html
    assert re.findall(r'<tr id="number-(\w+)"', html)[:3] == [SALES_1, SALES_3, OFFLINE_DEVICE]


def test_it_works_without_javascript(lead_client, fleet_read):
    html = lead_client.get("/numbers/").content.decode()
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in html
    assert '<form id="numbers-filters" class="card filters" method="get" action="/numbers/"' in html
    assert '<button type="submit">Filter</button>' in html and '<a href="/numbers/">reload now</a>' in html
    assert '<script src="/static/queues/live.js" defer></script>' in html
    assert "<script>" not in html.replace("<script>alert", "")  # no inline script: the policy forbids it
    assert re.search(r"<script(?! src=)", html) is None


def test_it_shows_hostile_aliases_as_text(lead_client, lead, fleet_read, django_capture_on_commit_callbacks):
    found = devices.device_list()
    with django_capture_on_commit_callbacks(execute=False):  # markers name the other number in the chart's titles
        services.reroute_request(source=found.get(HTML_ALIAS_DEVICE), target=found.get(IMG_ALIAS_DEVICE), note="",
                                 user=lead)
    for url in ("/numbers/", f"/numbers/{HTML_ALIAS_DEVICE}/", f"/numbers/{IMG_ALIAS_DEVICE}/"):
        html = lead_client.get(url).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>Bold" not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, url
    overview = lead_client.get("/numbers/").content.decode()
    assert "to &lt;img src=x onerror=alert(1)&gt; (queued)</title>" in row_of(overview, HTML_ALIAS_DEVICE)


def test_it_says_when_the_monitor_is_paused_and_why(lead_client, fleet_read):
    fleet_read.fault(route="queue_get", status=429, retry_after="45", times=1)
    monitor.monitor_cycle()
    html = lead_client.get("/numbers/").content.decode()
    state = MonitorState.objects.get()
    assert state.pause_reason and "<strong>The monitor is paused.</strong>" in html
    assert state.pause_reason.split(" The monitor waits")[0] in html
    assert "States and depths are from before the pause" in html
    assert "The monitor waits until" in html


def test_it_says_when_the_monitor_has_not_run(lead_client, sandbox):
    html = lead_client.get("/numbers/").content.decode()
    assert "The monitor has not finished a cycle yet" in html and "The monitor has not listed any number yet." in html
    assert not MonitorState.objects.exists()  # a page reads the monitor's state, never creates it


# A number's page -------------------------------------------------------------------------------


def test_it_shows_a_numbers_week_its_state_changes_and_its_queue_now(lead_client, fleet_read):
    Number.objects.filter(device_id=SALES_1).update(read_problem="")
    response = lead_client.get(f"/numbers/{SALES_1}/")
    html = response.content.decode()
    assert response.status_code == 200 and "<h1>Sales-1</h1>" in html
    assert '<svg class="chart week"' in html and "Queue depth over the last 7 days: highest 400, latest 400." in html
    changes = re.search(r'<table class="table state-changes">.*?</table>', html, re.S).group(0)
    assert changes.count("<tr>") == 3  # the header, offline now, online before
    assert "<td>offline</td><td>until now</td>" in changes.replace("\n", "").replace("        ", "")
    assert '<span class="depth">400</span> (400 pending, 0 processing, 0 scheduled)' in html
    assert f'<a href="/reroute/?source={SALES_1}">Reroute from here</a>' in html
    assert "No reroute has touched this number." in html
    assert f'<a href="/history/?device={SALES_1}">' not in html  # a lead does not read the whole history


def test_it_lists_the_reroutes_that_touched_a_number_newest_first_in_pages(client, manager, lead, fleet_read,
                                                                          monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    monkeypatch.setattr(fleet, "REROUTES_PAGE_SIZE", 3)
    found = devices.device_list()
    made = []
    with django_capture_on_commit_callbacks(execute=False):
        for source in (SALES_1, SALES_2, SALES_3, HTML_ALIAS_DEVICE, OFFLINE_DEVICE):
            made.append(services.reroute_request(source=found.get(source), target=found.get(SALES_4), note="",
                                                 user=lead if source != SALES_2 else manager).pk)
        made.append(services.reroute_request(source=found.get(SALES_4), target=found.get(SALES_1), note="",
                                             user=lead, origin="api").pk)
    client.force_login(manager)
    first = client.get(f"/numbers/{SALES_4}/").content.decode()
    assert re.findall(r"Reroute #(\d+)</a>", first) == [str(pk) for pk in made[::-1][:3]]
    assert "to Sales-1 (+447700900001)" in first and "<td>API</td>" in first and "<td>lead</td>" in first
    older = re.search(r'<a href="(/numbers/\w+/\?before=\d+)#number-reroutes" rel="next">', first).group(1)
    second = client.get(older).content.decode()
    assert re.findall(r"Reroute #(\d+)</a>", second) == [str(pk) for pk in made[::-1][3:6]]
    assert "from Sales-1 (+447700900001)" in second and "<td>manager</td>" in second and "« Newest" in second
    assert f'<a href="/history/?device={SALES_4}">Its reroutes in the history</a>' in first

    client.force_login(lead)  # a lead reads the list, but opens only the reroutes they asked for
    as_lead = client.get(older).content.decode()
    other = made[1]
    assert f"<td>Reroute #{other}</td>" in as_lead and f'href="/reroutes/{other}/"' not in as_lead
    assert f'href="/reroutes/{made[0]}/"' in as_lead and "<th scope=\"col\">Who</th>" not in as_lead
    bad = client.get(f"/numbers/{SALES_4}/?before=x").content.decode()
    assert "The page position in this link is not valid" in bad and "Reroute #" in bad


def test_it_marks_a_number_that_left_the_device_list(lead_client, fleet_read):
    fleet_read.control("POST", f"/devices/{SALES_2}/remove")
    devices.device_list_forget()
    MonitorState.objects.update(devices_read_at=None)
    monitor.monitor_cycle()
    html = lead_client.get(f"/numbers/{SALES_2}/").content.decode()
    assert "No longer in SparkBot's device list: last seen" in html


def test_it_keeps_a_numbers_state_current_with_htmx(lead_client, fleet_read):
    response = lead_client.get(f"/numbers/{SALES_1}/", **HTMX)
    html = response.content.decode()
    assert html.startswith('<section id="number-now" class="card number-now" data-live')
    assert f'hx-get="/numbers/{SALES_1}/" hx-trigger="every 5s, refresh"' in html and "<html" not in html


def test_it_answers_404_for_a_number_the_monitor_does_not_know(lead_client, fleet_read):
    assert lead_client.get("/numbers/65a000000000000000000999/").status_code == 404
    assert lead_client.get("/numbers/not-a-device/").status_code == 404


def test_it_shows_the_state_the_week_opened_with(lead_client, fleet_read):
    number = Number.objects.get(device_id=SALES_1)
    number.snapshots.update(at=F("at") - timedelta(days=8))  # every reading older than the week, in its order
    html = lead_client.get(f"/numbers/{SALES_1}/").content.decode()
    assert "No queue reading in the last 7 days." in html
    assert re.search(r"<td>before <time[^>]*>[^<]+</time></td>\s*<td>operative</td><td>offline</td><td>until now</td>",
                     html)
