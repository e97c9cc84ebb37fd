"""Finding a WhatsApp number by what a person or a script calls it: its id, its phone or its alias.

Used by the API and the command line, against SparkBot's current device list. Nothing is guessed:
an alias shared by two numbers, or a name that matches nothing exactly, is refused with the
numbers it could mean.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .devices import DeviceList
from .sparkbot import DEVICE_ID, Device

MAX_CANDIDATES = 10
PHONE_PUNCTUATION = re.compile(r"[\s().\-]")


class NameNotResolved(Exception):
    """The name matches no number, or more than one; `candidates` are the numbers it could mean."""

    def __init__(self, name: str, *, candidates: list[Device], ambiguous: bool):
        self.name, self.candidates, self.ambiguous = name, candidates, ambiguous
        super().__init__(self.sentence)

    @property
    def sentence(self) -> str:
        if self.ambiguous:
            return f"“{self.name}” names {len(self.candidates)} numbers; use the id or the phone of one of them."
        if self.candidates:
            return f"No number is called “{self.name}”; did you mean one of these?"
        return f"No number in SparkBot's device list is called “{self.name}” (give its id, phone or alias)."


@dataclass(frozen=True)
class Candidate:
    id: str
    alias: str
    phone: str

    @classmethod
    def of(cls, device: Device) -> Candidate:
        return cls(id=device.id, alias=device.alias, phone=device.phone)


def _folded(text: str) -> str:
    """An alias as it is compared: trimmed, its accents in one Unicode form (é typed as one character
    or as e and an accent), and case folded."""
    return unicodedata.normalize("NFC", text.strip()).casefold()


def _digits(phone: str) -> str:
    return PHONE_PUNCTUATION.sub("", phone).removeprefix("+").removeprefix("00")


def device_resolve(*, name: str, devices: DeviceList) -> Device:
    """The one device this id, phone or alias names; raises NameNotResolved."""
    text = name.strip()
    if DEVICE_ID.match(text.lower()) and devices.get(text.lower()):
        return devices.get(text.lower())
    digits = _digits(text)
    if digits.isdigit() and len(digits) >= 6:
        by_phone = [d for d in devices.devices if d.phone and _digits(d.phone) == digits]
        if len(by_phone) == 1:
            return by_phone[0]
        if by_phone:
            raise NameNotResolved(text, candidates=by_phone[:MAX_CANDIDATES], ambiguous=True)
    folded = _folded(text)
    by_alias = [d for d in devices.devices if _folded(d.alias) == folded]
    if len(by_alias) == 1:
        return by_alias[0]
    if by_alias:
        raise NameNotResolved(text, candidates=by_alias[:MAX_CANDIDATES], ambiguous=True)
    similar = [d for d in devices.devices if folded and (folded in _folded(d.alias) or (
        digits.isdigit() and digits in _digits(d.phone)))]
    raise NameNotResolved(text, candidates=similar[:MAX_CANDIDATES], ambiguous=False)


def names_device(name: str, *, device_id: str, phone: str, alias: str) -> bool:
    """Whether `name` is this number's id, phone or alias, read as device_resolve reads them (without
    the device list: a request sent again is matched against the numbers its reroute recorded)."""
    text = name.strip()
    digits = _digits(text)
    by_phone = digits.isdigit() and len(digits) >= 6 and bool(phone) and _digits(phone) == digits
    return text.lower() == device_id or by_phone or _folded(text) == _folded(alias)


# Many names at once (a pasted or imported plan of hundreds of moves) ------------------------------


class NameIndex:
    """`device_resolve` over one device list, with its phones and aliases indexed: each name costs a
    dictionary look-up instead of a walk of the whole list. The answer, and every refusal, is
    device_resolve's own (a name it cannot place uniquely is handed to device_resolve to explain)."""

    def __init__(self, devices: DeviceList):
        self.devices = devices
        self.by_phone: dict[str, list[Device]] = {}
        self.by_alias: dict[str, list[Device]] = {}
        for device in devices.devices:
            if device.phone:
                self.by_phone.setdefault(_digits(device.phone), []).append(device)
            self.by_alias.setdefault(_folded(device.alias), []).append(device)

    def resolve(self, name: str) -> Device:
        text = name.strip()
        device = self.devices.get(text.lower()) if DEVICE_ID.match(text.lower()) else None
        if device is not None:
            return device
        digits = _digits(text)
        if digits.isdigit() and len(digits) >= 6:
            by_phone = self.by_phone.get(digits, [])
            if len(by_phone) == 1:
                return by_phone[0]
            if by_phone:
                return device_resolve(name=name, devices=self.devices)  # raises: ambiguous
        by_alias = self.by_alias.get(_folded(text), [])
        if len(by_alias) == 1:
            return by_alias[0]
        return device_resolve(name=name, devices=self.devices)  # raises, with the numbers it could mean

    def name_of(self, device: Device) -> str:
        """The friendliest name that resolves back to this device: its alias, else its phone, else its id."""
        for name in (device.alias.strip(), device.phone):
            if name and self._names_only(name, device):
                return name
        return device.id

    def _names_only(self, name: str, device: Device) -> bool:
        try:
            return self.resolve(name) == device
        except NameNotResolved:
            return False


_indexes: dict[str, NameIndex] = {}


def name_index(devices: DeviceList) -> NameIndex:
    """The index of a device list, built once per list version in each process."""
    index = _indexes.get(devices.version)
    if index is None:
        index = NameIndex(devices)
        _indexes.clear()
        _indexes[devices.version] = index
    return index
