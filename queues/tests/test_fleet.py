"""The overview's reads (queues/fleet.py): attention order, filters, summary, pages, a number's week.
Numbers are recorded by the monitor itself, from the sandbox over HTTP, or through its recording
functions with past times."""

from datetime import timedelta

import pytest
from django.utils import timezone

from queues import devices, fleet, monitor
from queues.models import MonitorState, Number
from queues.sparkbot import Device, QueueStats
from sparkbot_sandbox.seed import (
    HTML_ALIAS, OFFLINE_DEVICE, SALES_1, SALES_3, SEED_DEVICES,
)

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def aliases(page: fleet.FleetPage) -> list[str]:
    return [row.number.alias for row in page.rows]


def test_it_puts_numbers_that_cannot_deliver_and_hold_messages_first_then_cannot_deliver_then_by_depth(fleet_read):
    page = fleet.fleet_page(filters=fleet.FleetFilters())
    rows = [(r.number.alias, r.number.can_deliver, r.number.queue_total) for r in page.rows]
    assert rows[:2] == [("Sales-1", False, 400), ("Café Zürich — Kundendienst", False, 4)]
    cannot = [row for row in rows if not row[1]]
    assert rows[:len(cannot)] == cannot  # every number that cannot deliver before any that can
    assert all(total == 0 for _alias, _can, total in cannot[2:])
    can = [(alias, total) for alias, _can, total in rows[len(cannot):]]
    assert can[:3] == [("Sales-3", 37), ("Campaigns", 7), (HTML_ALIAS, 5)]
    assert [total for _alias, total in can] == sorted((total for _alias, total in can), reverse=True)
    assert page.matched == len(SEED_DEVICES) and page.pages == 1


def test_it_filters_by_cannot_deliver_by_messages_and_by_alias_or_phone(fleet_read):
    cannot = fleet.fleet_page(filters=fleet.FleetFilters(cannot_deliver=True))
    assert all(not row.number.can_deliver for row in cannot.rows) and len(cannot.rows) == 8
    both = fleet.fleet_page(filters=fleet.FleetFilters(cannot_deliver=True, has_messages=True))
    assert aliases(both) == ["Sales-1", "Café Zürich — Kundendienst"]
    holding = fleet.fleet_page(filters=fleet.FleetFilters(has_messages=True))
    assert aliases(holding) == ["Sales-1", "Café Zürich — Kundendienst", "Sales-3", "Campaigns", HTML_ALIAS]
    assert aliases(fleet.fleet_page(filters=fleet.FleetFilters(q="sales"))) == ["Sales-1", "Sales-3", "Sales-2",
                                                                                 "Sales-4"]
    assert aliases(fleet.fleet_page(filters=fleet.FleetFilters(q="KUNDENDIENST"))) == ["Café Zürich — Kundendienst"]
    assert aliases(fleet.fleet_page(filters=fleet.FleetFilters(q="é zür"))) == ["Café Zürich — Kundendienst"]
    by_phone = fleet.fleet_page(filters=fleet.FleetFilters(q="+44 7700-900 003"))
    assert aliases(by_phone) == ["Sales-3"]
    assert aliases(fleet.fleet_page(filters=fleet.FleetFilters(q="sales 3"))) == []  # words: aliases only
    assert aliases(fleet.fleet_page(filters=fleet.FleetFilters(q="<script>"))) == [HTML_ALIAS]
    assert aliases(fleet.fleet_page(filters=fleet.FleetFilters(q=SALES_3.upper()))) == ["Sales-3"]  # its id


def test_it_sums_up_what_cannot_be_delivered(fleet_read):
    summary = fleet.fleet_summary()
    assert summary.headline == "8 numbers cannot deliver, holding 404 messages."
    assert summary.detail == f"5 of {len(SEED_DEVICES)} numbers hold messages, 453 messages in all."
    assert fleet.FleetSummary(3, 1, 1, 1, 1).headline == "1 number cannot deliver, holding 1 message."
    assert fleet.FleetSummary(3, 0, 0, 0, 0).headline == "Every number can deliver (3 numbers)."
    assert fleet.FleetSummary(0, 0, 0, 0, 0).headline == "The monitor has not listed any number yet."


def test_its_sums_say_how_many_queues_are_not_read_yet(fleet_read):
    Number.objects.filter(device_id__in=[SALES_1, OFFLINE_DEVICE]).update(queue_total=None, read_at=None)
    assert fleet.fleet_summary().detail == (
        f"3 of {len(SEED_DEVICES)} numbers hold messages, 49 messages in all. The queues of 2 numbers are not "
        "read yet: these figures leave them out.")
    Number.objects.update(queue_total=None, read_at=None)
    assert fleet.fleet_summary().detail == (
        f"No queue is read yet: the queues of all {len(SEED_DEVICES)} numbers are still to be read.")


def test_it_leaves_out_numbers_that_left_the_device_list(fleet_read):
    fleet_read.control("POST", f"/devices/{OFFLINE_DEVICE}/remove")
    devices.device_list_forget()
    MonitorState.objects.update(devices_read_at=None)
    monitor.monitor_cycle()
    assert Number.objects.get(device_id=OFFLINE_DEVICE).listed is False
    assert "Café Zürich — Kundendienst" not in aliases(fleet.fleet_page(filters=fleet.FleetFilters()))
    assert fleet.fleet_summary().headline == "7 numbers cannot deliver, holding 400 messages."


def test_it_pages_the_overview(fleet_read):
    pages = [fleet.fleet_page(filters=fleet.FleetFilters(), page=n, size=4) for n in (1, 2, 3, 4, 5)]
    assert [p.pages for p in pages] == [4] * 5 and [len(p.rows) for p in pages] == [4, 4, 4, 3, 0]
    assert sum((aliases(p) for p in pages), []) == aliases(fleet.fleet_page(filters=fleet.FleetFilters()))
    assert (pages[0].previous, pages[0].next, pages[3].next, pages[1].first_shown, pages[3].last_shown) == (
        None, 2, None, 5, 15)


# A number's week --------------------------------------------------------------------------------


def device(session: str, status: str = "operative") -> Device:
    return Device(SALES_3, "Sales-3", "+447700900003", status, session)


def test_it_lists_a_numbers_state_changes_over_seven_days(db, settings):
    settings.MONITOR_HEARTBEAT_MINUTES = 15
    now = timezone.now()
    at = lambda **ago: now - timedelta(**ago)  # noqa: E731
    monitor.record_device_list([device("online")], now=at(days=9))
    number = Number.objects.get(device_id=SALES_3)
    for ago_hours, total in [(100, 3), (90, 3), (80, 5)]:  # heartbeats and readings in the same state
        monitor.record_queue(number, QueueStats("active", total, total, 0, 0, {}), now=at(hours=ago_hours))
    monitor.record_device_list([device("offline")], now=at(days=3))
    monitor.record_device_list([device("online")], now=at(days=2))
    monitor.record_device_list([device("online", status="banned")], now=at(hours=1))

    changes, cut = fleet.state_changes(number=number, since=at(days=7), now=now)
    assert not cut
    assert [(c.account_status, c.session_status, c.lasted, c.before_window) for c in changes] == [
        ("banned", "online", "until now", False),
        ("operative", "online", "47 h", False),
        ("operative", "offline", "24 h", False),
        ("operative", "online", "4 days", True),  # the window opened in this state, first seen before it
    ]
    assert changes[-1].at == at(days=7)


def test_it_downsamples_the_queue_depth_to_hours(db):
    now = (timezone.now() - timedelta(hours=1)).replace(minute=50)
    monitor.record_device_list([device("online")], now=now - timedelta(hours=5))
    number = Number.objects.get(device_id=SALES_3)
    for minutes, total in [(170, 2), (160, 8), (150, 4), (30, 1), (5, 0)]:
        monitor.record_queue(number, QueueStats("active", total, total, 0, 0, {}), now=now - timedelta(minutes=minutes))
    hours = fleet.depth_hours(number=number, since=now - timedelta(days=7))
    assert [(h.highest, h.lowest) for h in hours] == [(8, 2), (1, 0)]  # 2, 8, 4 in one hour; 1, 0 in another
    week = fleet.number_week(number=number, now=now)
    assert week.hours == hours and max(d.highest for d in week.days) == 8 and week.markers == []


def test_it_tells_how_the_monitor_is_doing(db, settings):
    assert fleet.monitor_health() == fleet.MonitorHealth(ran=False)
    now = timezone.now()
    monitor.monitor_state()
    MonitorState.objects.update(cycle_ended_at=now - timedelta(seconds=4), devices_read_at=now - timedelta(seconds=12))
    health = fleet.monitor_health(now=now)
    assert (health.cycle_age, health.devices_age, health.paused, health.silent) == ("4 s ago", "12 s ago", False, False)
    MonitorState.objects.update(paused_until=now + timedelta(seconds=30), pause_reason="SparkBot is rate limiting.")
    assert fleet.monitor_health(now=now).pause_reason == "SparkBot is rate limiting."
    assert fleet.monitor_health(now=now + timedelta(seconds=31)).paused is False
    MonitorState.objects.update(cycle_ended_at=now - timedelta(minutes=5), paused_until=None)
    assert fleet.monitor_health(now=now).silent is True


def test_it_words_durations_and_times_with_their_zone(settings):
    assert [fleet.duration(timedelta(seconds=s)) for s in (0, 40, 61, 3600, 3660 + 3600, 49 * 3600, 72 * 3600)] == [
        "0 s", "40 s", "1 min", "1 h", "2 h 1 min", "2 days 1 h", "3 days"]
    now = timezone.now().replace(hour=12, minute=0)
    assert fleet.clock(now.replace(hour=9, minute=5), now) == "09:05 UTC"
    yesterday = now - timedelta(days=1)
    assert fleet.clock(yesterday, now) == f"{yesterday.day} {yesterday:%b} 12:00 UTC"

