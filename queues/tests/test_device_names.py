"""Naming numbers by id, phone or alias (queues/device_names.py): many names at once with NameIndex, which
answers exactly as device_resolve does, and the friendliest name that resolves back to each number."""

import pytest

from queues.device_names import NameIndex, NameNotResolved, device_resolve, name_index
from queues.devices import DeviceList
from queues.sparkbot import Device

pytestmark = pytest.mark.embedded

DEVICES = DeviceList(devices=(
    Device("a" * 24, "Sales-1", "+44 7700 900001", "operative", "online"),
    Device("b" * 24, "Sales-2", "+447700900002", "operative", "online"),
    Device("c" * 24, "Twin", "+447700900003", "operative", "online"),
    Device("d" * 24, "twin ", "", "operative", "online"),
    Device("e" * 24, "447700900002", "+351600000001", "operative", "online"),  # an alias that is another's phone
    Device("f" * 24, "Same phone", "+351600000002", "operative", "online"),
    Device("0" * 24, "Other same phone", "+351 600 000 002", "operative", "online"),
    Device("1" * 24, "Caf\u00e9 Z\u00fcrich", "+41440000001", "operative", "online"),  # composed (NFC)
    Device("2" * 24, "Se\u0301rgio", "+351600000003", "operative", "online"),  # decomposed (NFD)
), fetched_at=0)

NAMES = ["a" * 24, "A" * 24, "Sales-1", "sales-1", " Sales-2 ", "+447700900001", "0044 7700 900001", "447700900002",
         "Twin", "twin", "Same phone", "+351600000002", "Sales", "Nobody", "", "9" * 24, "900001", "+351600000001",
         "Cafe\u0301 Zu\u0308rich", "caf\u00e9 z\u00fcrich", "S\u00e9rgio", "Caf"]


def outcome(resolve, name):
    try:
        return resolve(name).id
    except NameNotResolved as refused:
        return (refused.sentence, [d.id for d in refused.candidates], refused.ambiguous)


@pytest.mark.parametrize("name", NAMES)
def test_it_answers_exactly_as_device_resolve(name):
    index = NameIndex(DEVICES)
    assert outcome(index.resolve, name) == outcome(lambda n: device_resolve(name=n, devices=DEVICES), name)


def test_it_finds_an_alias_whatever_the_unicode_form_of_its_accents():
    for name, device_id in [("Cafe\u0301 Zu\u0308rich", "1" * 24), ("S\u00e9rgio", "2" * 24)]:
        assert device_resolve(name=name, devices=DEVICES).id == device_id
    with pytest.raises(NameNotResolved) as similar:
        device_resolve(name="cafe\u0301", devices=DEVICES)
    assert [d.id for d in similar.value.candidates] == ["1" * 24]


def test_it_names_each_number_by_what_resolves_back_to_it():
    index = NameIndex(DEVICES)
    names = {device.id: index.name_of(device) for device in DEVICES.devices}
    assert names["a" * 24] == "Sales-1"
    assert names["c" * 24] == "+447700900003" and names["d" * 24] == "d" * 24  # "twin" names two numbers
    assert names["e" * 24] == "+351600000001"  # its alias is Sales-2's phone
    assert names["f" * 24] == "Same phone" and names["0" * 24] == "Other same phone"
    for device in DEVICES.devices:
        assert index.resolve(names[device.id]) == device


def test_it_builds_one_index_per_list_version():
    assert name_index(DEVICES) is name_index(DEVICES)
    other = DeviceList(devices=DEVICES.devices, fetched_at=0)
    assert name_index(other) is not name_index(DEVICES)
