"""The charts drawn as inline SVG (queues/charts.py): the day's sparkline of a number with a marker per
reroute by origin, its 7-day chart, their text alternatives, and drawing once a minute."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from queues import charts, devices, fleet, monitor, services
from queues.models import Number
from queues.sparkbot import Device, QueueStats
from sparkbot_sandbox.seed import HTML_ALIAS_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def sparkline_of(alias: str) -> str:
    page = fleet.fleet_page(filters=fleet.FleetFilters(q=alias))
    return charts.sparkline_of_this_minute(page.rows[0].number, page.rows[0].markers, now=page.now)


def request_reroute(lead, source: str, target: str, origin: str, capture) -> None:
    found = devices.device_list()
    with capture(execute=False):
        services.reroute_request(source=found.get(source), target=found.get(target), note="", user=lead,
                                 origin=origin)


def test_it_draws_the_days_depth_with_a_marker_for_each_reroute_by_origin(fleet_read, lead,
                                                                         django_capture_on_commit_callbacks):
    number = Number.objects.get(device_id=SALES_1)
    now = timezone.now()
    slot = int(now.timestamp()) // monitor.SLOT_SECONDS
    number.depth_24h = [[slot - 60, 99], [slot - 10, 3], [slot - 9, 9], [slot - 8, 0], [slot, 400]]  # 30 h ago: out
    request_reroute(lead, SALES_1, SALES_4, "web", django_capture_on_commit_callbacks)
    request_reroute(lead, HTML_ALIAS_DEVICE, SALES_1, "handover", django_capture_on_commit_callbacks)
    request_reroute(lead, SALES_2, SALES_1, "rule", django_capture_on_commit_callbacks)
    Number.objects.filter(pk=number.pk).update(depth_24h=number.depth_24h)
    svg = sparkline_of("Sales-1")

    polylines = re.findall(r'<polyline class="line" points="([^"]+)"', svg)
    assert [len(p.split()) for p in polylines] == [3]  # 3, 9, 0; then a gap of 4 h before 400 (a lone dot)
    assert svg.count('<circle class="dot"') == 1
    assert re.findall(r'<g class="mark mark-(\w+)">', svg) == ["web", "handover", "rule"]
    for origin in ("web", "handover", "rule"):
        assert f'<g class="mark mark-{origin}">' in svg
    assert re.search(r'<title>Reroute #\d+, by hand, \d\d:\d\d UTC: to Sales-4 \(queued\)</title>', svg)
    assert "from &lt;b&gt;Bold&lt;/b&gt; &amp; &quot;Quotes&quot;" in svg and "<script>" not in svg
    title = re.search(r'<svg [^>]*role="img" aria-labelledby="(spark-\d+)"><title id="\1">([^<]+)</title>', svg)
    assert title.group(2).startswith(
        "Queue depth over the last 24 hours: highest 400, latest 400. 3 reroutes (1 by hand, 1 Handover, 1 Rule); "
        "the last: Reroute #")


def test_it_names_an_origin_it_does_not_know_yet_and_shapes_each_one_apart():
    assert fleet.origin_label("web") == "by hand" and fleet.origin_label("cli") == "Command line"
    assert fleet.origin_label("escalation_bot") == "Escalation bot"
    legend = {origin: svg for origin, _label, svg in charts.marker_legend()}
    assert {"web", "handover", "rule", "api", "cli"} <= set(legend)
    shapes = {re.search(r'<g class="mark mark-\w+">(.*)</g>', svg).group(1) for svg in legend.values()}
    assert len(shapes) == len(legend)  # each origin its own shape, not only its own colour


def test_it_draws_no_line_and_says_so_before_any_reading():
    number = Number(pk=7, device_id="65a000000000000000000077", alias="New", depth_24h=[])
    svg = charts.sparkline(number, [], now=timezone.now())
    assert "<polyline" not in svg and "No queue reading over the last 24 hours. No reroute." in svg


def test_it_draws_a_sparkline_once_a_minute_unless_what_it_shows_changed(fleet_read, lead,
                                                                         django_capture_on_commit_callbacks):
    def drawn():
        return sparkline_of("Sales-1")

    first = drawn()
    assert drawn() is first  # the next poll in the same minute: the same drawing
    fleet_read.set_queue(SALES_1, pending=3)
    monitor.monitor_cycle()
    assert drawn() is first  # the half hour keeps its highest reading: nothing to draw again
    fleet_read.set_queue(SALES_1, pending=500)
    monitor.monitor_cycle()
    after_reading = drawn()
    assert after_reading is not first and "latest 500." in after_reading
    request_reroute(lead, SALES_1, SALES_4, "web", django_capture_on_commit_callbacks)
    assert "mark-web" in drawn() and "mark-web" not in after_reading


def test_it_draws_a_numbers_week_with_a_line_a_day_and_says_what_it_shows(db):
    now = (timezone.now() - timedelta(hours=1)).replace(minute=50)
    monitor.record_device_list([Device(SALES_3, "Sales-3", "+447700900003", "operative", "online")],
                               now=now - timedelta(days=3))
    number = Number.objects.get(device_id=SALES_3)
    for hours, total in [(60, 8), (59, 2), (2, 1)]:
        monitor.record_queue(number, QueueStats("active", total, total, 0, 0, {}), now=now - timedelta(hours=hours))
    svg = charts.week_chart(fleet.number_week(number=number, now=now))
    assert "Queue depth over the last 7 days: highest 8, latest 1. No reroute." in svg
    assert svg.count('class="tick"') in (6, 7)  # a line at each midnight of the week, with the day's name
    assert len(re.findall(r'<polyline class="line" points="[^"]+"', svg)) == 1  # 60 and 59 h ago
    assert svg.count('<circle class="dot"') == 1  # then no reading for 57 hours: a gap, and a lone dot
