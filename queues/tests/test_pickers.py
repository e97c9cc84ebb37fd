"""What the number pickers show (queues/pickers.py): state and the monitor's last queue depth, rendered once
per (device list version, monitor version) in each process."""

from datetime import datetime, timezone

import pytest

from queues import devices, pickers
from queues.devices import DeviceList
from queues.models import MonitorState, Number
from queues.sparkbot import Device
from sparkbot_sandbox.seed import SALES_2, SALES_3

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def reading(device_id: str, total: int | None, status: str = "active", read=True) -> Number:
    return Number.objects.create(device_id=device_id, alias=device_id, account_status="operative",
                                 session_status="online", can_deliver=True, state_since=NOW, listed_at=NOW,
                                 queue_status=status, queue_total=total, read_at=NOW if read else None)


def bump() -> None:
    state, _ = MonitorState.objects.get_or_create(pk=MonitorState.SINGLETON)
    MonitorState.objects.filter(pk=state.pk).update(version=state.version + 1)


@pytest.mark.parametrize("total, status, words", [
    (None, "active", ""), (0, "active", "empty queue"), (1, "active", "1 queued"), (37, "pause", "37 queued, paused"),
    (5, "freeze", "5 queued, frozen"), (5, "reject", "5 queued, rejecting"),
])
def test_it_words_a_queue_depth(total, status, words):
    assert pickers.depth_words(pickers.Reading(total, status, NOW)) == words
    assert pickers.depth_words(None) == ""


@pytest.mark.parametrize("status, session, words", [
    ("operative", "online", "can deliver now"), ("ready", "offline", "cannot deliver now (offline)"),
    ("disabled", "online", "not usable (disabled)"),
])
def test_it_words_a_numbers_state(status, session, words):
    assert pickers.state_words(Device("a" * 24, "A", "+1", status, session)) == words


def test_it_shows_depths_only_for_numbers_the_monitor_has_read(sandbox):
    reading(SALES_3, 37)
    reading(SALES_2, None, read=False)
    bump()
    choices = pickers.choices(devices.device_list())
    assert f'<option value="{SALES_3}">Sales-3 · +447700900003 · can deliver now · 37 queued</option>' in \
        choices.options_html
    assert f'<option value="{SALES_2}">Sales-2 · +447700900002 · can deliver now</option>' in choices.options_html
    assert choices.options_html.startswith('<option value="">Choose a number…</option>')
    assert not choices.multiple_options_html.startswith('<option value="">')
    assert '<option value="Sales-3">Sales-3 · +447700900003 · can deliver now · 37 queued</option>' in \
        choices.datalist_html


def test_it_renders_once_per_device_list_and_monitor_version(sandbox, django_assert_num_queries):
    device_list = devices.device_list()
    first = pickers.choices(device_list)
    with django_assert_num_queries(1):  # only the monitor's version
        assert pickers.choices(device_list) is first
    Number.objects.create(device_id=SALES_3, alias="Sales-3", account_status="operative", session_status="online",
                          can_deliver=True, state_since=NOW, listed_at=NOW, queue_total=12, read_at=NOW)
    assert pickers.choices(device_list) is first  # the monitor has not said that anything changed
    bump()
    again = pickers.choices(device_list)
    assert again is not first and "12 queued" in again.options_html
    refreshed = devices.device_list(refresh=True)
    assert pickers.choices(refreshed) is not again


def test_it_escapes_what_sparkbot_calls_a_number(sandbox):
    html = pickers.choices(DeviceList(devices=(Device("b" * 24, "<b>x</b> & \"y\"", "", "operative", "online"),),
                                      fetched_at=0)).options_html
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot; · no phone" in html and "<b>" not in html


def test_it_marks_chosen_numbers_selected():
    html = '<option value="">Choose</option>\n<option value="aaaaaaaaaaaaaaaaaaaaaaaa">A</option>\n' \
           '<option value="bbbbbbbbbbbbbbbbbbbbbbbb">B</option>\n'
    assert pickers.with_selected(html, "b" * 24).count(" selected") == 1
    assert pickers.with_selected(html, '"><script>') == html
    many = pickers.with_selected_many(html, {"a" * 24, "b" * 24})
    assert many.count(" selected>") == 2 and '<option value="">Choose</option>' in many
