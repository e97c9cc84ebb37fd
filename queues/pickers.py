"""What the number pickers show: each number's alias, phone, state and queue depth.

The depth is the fleet monitor's last reading (`Number`); a number it has not read yet shows none.
The options are rendered once per (device list version, monitor version) in each process, so a
page with pickers costs one small query (the monitor's version) and a dictionary look-up, however
many numbers there are. A user's choice is marked by a string replacement, never a re-render.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.utils.html import escape

from .device_names import name_index
from .devices import DeviceList
from .models import MonitorState, Number
from .sparkbot import Device

CHOOSE_OPTION = '<option value="">Choose a number…</option>\n'
QUEUE_STATUS_WORDS = {"pause": "paused", "freeze": "frozen", "reject": "rejecting"}


@dataclass(frozen=True)
class Reading:
    """The monitor's last reading of one number's queue."""

    total: int | None
    status: str
    read_at: datetime | None


def state_words(device: Device) -> str:
    if device.can_deliver:
        return "can deliver now"
    if device.is_usable:
        return f"cannot deliver now ({device.session_status})"
    return f"not usable ({device.status})"


def depth_words(reading: Reading | None) -> str:
    """"37 queued", "empty queue", "37 queued, paused"; "" for a number the monitor has not read."""
    if reading is None or reading.total is None:
        return ""
    words = "empty queue" if reading.total == 0 else f"{reading.total} queued"
    held = QUEUE_STATUS_WORDS.get(reading.status)
    return f"{words}, {held}" if held else words


def describe(device: Device, reading: Reading | None) -> str:
    """One line a picker shows for a number: alias · phone · state · depth."""
    parts = [device.alias, device.phone or "no phone", state_words(device)]
    depth = depth_words(reading)
    if depth:
        parts.append(depth)
    return " · ".join(parts)


def monitor_version() -> int:
    return MonitorState.objects.filter(pk=MonitorState.SINGLETON).values_list("version", flat=True).first() or 0


_lock = threading.Lock()
_readings: tuple[int, dict[str, Reading]] = (-1, {})


def readings(*, version: int | None = None) -> dict[str, Reading]:
    """Every number's last queue reading by device id, loaded once per monitor version."""
    global _readings
    version = monitor_version() if version is None else version
    loaded_version, loaded = _readings
    if loaded_version == version:
        return loaded
    rows = Number.objects.filter(read_at__isnull=False).values_list("device_id", "queue_total", "queue_status",
                                                                    "read_at")
    loaded = {device_id: Reading(total, status, read_at) for device_id, total, status, read_at in rows}
    with _lock:
        _readings = (version, loaded)
    return loaded


class Choices:
    """The numbers of one device list with the readings of one monitor version, as pickers show them."""

    def __init__(self, devices: DeviceList, readings_by_id: dict[str, Reading]):
        self.devices, self.readings = devices, readings_by_id

    def reading(self, device_id: str) -> Reading | None:
        return self.readings.get(device_id)

    def describe(self, device: Device) -> str:
        return describe(device, self.readings.get(device.id))

    @cached_property
    def _lines(self) -> list[tuple[Device, str]]:
        return [(device, escape(self.describe(device))) for device in self.devices.devices]

    @cached_property
    def options_html(self) -> str:
        """The <option>s of a select whose values are device ids, led by "Choose a number…"."""
        return CHOOSE_OPTION + self.multiple_options_html

    @cached_property
    def multiple_options_html(self) -> str:
        """The same <option>s without the empty choice, for a select of several numbers."""
        return "".join(f'<option value="{device.id}">{text}</option>\n' for device, text in self._lines)

    @cached_property
    def datalist_html(self) -> str:
        """<option>s for a <datalist>: each value is the number's friendliest unique name (the text
        typed into a plan's field), each label what the picker shows."""
        index = name_index(self.devices)
        return "".join(f'<option value="{escape(index.name_of(device))}">{text}</option>\n'
                       for device, text in self._lines)


_choices: dict[tuple[str, int], Choices] = {}


def choices(devices: DeviceList) -> Choices:
    """The pickers' choices for this device list and the monitor's current readings."""
    version = monitor_version()
    key = (devices.version, version)
    found = _choices.get(key)
    if found is None:
        found = Choices(devices, readings(version=version))
        with _lock:
            _choices.clear()
            _choices[key] = found
    return found


def with_selected(options_html: str, chosen: str) -> str:
    """The options with one device id selected (ids are plain hex, so a string replacement is safe)."""
    if chosen and chosen.isalnum():
        return options_html.replace(f'value="{chosen}"', f'value="{chosen}" selected', 1)
    return options_html


def with_selected_many(options_html: str, chosen: set[str]) -> str:
    """The options with every chosen device id selected (one option per line)."""
    if not chosen:
        return options_html
    return "\n".join(line.replace('">', '" selected>', 1) if line[15:39] in chosen else line
                     for line in options_html.split("\n"))


def forget() -> None:
    """Drop this process's rendered choices and readings (tests)."""
    global _readings
    with _lock:
        _choices.clear()
        _readings = (-1, {})
