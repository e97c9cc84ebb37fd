"""A failover or overflow rule: its sources, condition, targets, cooldown and hours, checked in plain words.

Numbers are typed one per line, by id, phone or alias, and resolved against SparkBot's device list.
"""

from __future__ import annotations

import zoneinfo

from django import forms

from ..device_names import NameNotResolved, name_index
from ..devices import DeviceList
from ..models import Rule

TIME_ZONES = sorted(zoneinfo.available_timezones() - {"localtime"})
MAX_MINUTES = 24 * 60
MAX_MESSAGES = 100_000
MAX_COOLDOWN_MINUTES = 7 * 24 * 60
NUMBERS_HELP = "One per line: its id, its phone or its alias."


class NumbersField(forms.CharField):
    """Numbers typed one per line, by id, phone or alias; cleaned to device ids in the order given."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"})

    def __init__(self, *, devices: DeviceList, **kwargs):
        super().__init__(help_text=NUMBERS_HELP, **kwargs)
        self.devices = devices

    def clean(self, value) -> list[str]:
        lines = [line.strip() for line in (super().clean(value) or "").splitlines() if line.strip()]
        index, found, problems = name_index(self.devices), [], []
        for number, line in enumerate(lines, start=1):
            try:
                device = index.resolve(line)
            except NameNotResolved as unknown:
                problems.append(f"Line {number}: {unknown.sentence}" + _candidates(unknown))
                continue
            if device.id not in found:
                found.append(device.id)
        if problems:
            raise forms.ValidationError(problems)
        return found

    def prepare_value(self, value):
        if isinstance(value, list):  # device ids from the rule: shown by their friendliest name
            index = name_index(self.devices)
            return "\n".join(index.name_of(self.devices.get(i)) if self.devices.get(i) else i for i in value)
        return value


def _candidates(unknown: NameNotResolved) -> str:
    if not unknown.candidates:
        return ""
    return " " + ", ".join(f"{d.alias} ({d.phone or d.id})" for d in unknown.candidates[:5]) + "."


class RuleForm(forms.ModelForm):
    minutes = forms.IntegerField(label="For at least (minutes)", min_value=0, max_value=MAX_MINUTES,
                                 help_text="Without a break; 0 fires at once.")
    messages = forms.IntegerField(label="Holding at least (messages)", min_value=1, max_value=MAX_MESSAGES)
    cooldown_minutes = forms.IntegerField(label="Cooldown per source (minutes)", min_value=0,
                                          max_value=MAX_COOLDOWN_MINUTES,
                                          help_text="After it fires for a number, it waits this long for it.")
    active_from = forms.TimeField(label="Active from", required=False,
                                  widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    active_until = forms.TimeField(label="Active until", required=False,
                                   widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                                   help_text="Leave both empty to be active at all hours.")
    time_zone = forms.ChoiceField(choices=[(z, z) for z in TIME_ZONES], initial="UTC")

    class Meta:
        model = Rule
        fields = ["name", "enabled", "dry_run", "all_sources", "sources", "exceptions", "condition", "minutes",
                  "messages", "target_kind", "targets", "cooldown_minutes", "active_from", "active_until",
                  "time_zone"]
        labels = {"all_sources": "Every number is a source", "dry_run": "Dry run (record, route nothing)",
                  "target_kind": "Move to"}
        help_texts = {"dry_run": "Try a rule in dry run first: its decisions show what it would have done."}
        widgets = {"condition": forms.RadioSelect, "target_kind": forms.RadioSelect}

    def __init__(self, *args, devices: DeviceList, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sources"] = NumbersField(devices=devices, label="Sources", required=False)
        self.fields["exceptions"] = NumbersField(devices=devices, label="Except", required=False)
        self.fields["targets"] = NumbersField(devices=devices, label="Targets, in order of preference")
        self.fields["targets"].error_messages["required"] = "Give at least one target number."
        self.order_fields(self.Meta.fields)

    def clean(self):
        data = super().clean()
        sources, exceptions, targets = (data.get(name) or [] for name in ("sources", "exceptions", "targets"))
        if not data.get("all_sources") and not sources and "sources" not in self.errors:
            self.add_error("sources", "Give the numbers this rule watches, or make every number a source.")
        watched = [t for t in targets if (t not in exceptions if data.get("all_sources") else t in sources)]
        if watched:
            self.add_error("targets", f"{self._names(watched)} {'is' if len(watched) == 1 else 'are'} also "
                                      "watched by this rule: a rule never moves a number's queue to itself."
                                      + (" Add it to the exceptions." if data.get("all_sources") else ""))
        self._check_target_count(data.get("target_kind"), targets)
        self._check_targets_usable(targets)
        if (data.get("active_from") is None) != (data.get("active_until") is None):
            self.add_error("active_until", "Give both times of the active hours, or neither.")
        elif data.get("active_from") is not None and data["active_from"] == data["active_until"]:
            self.add_error("active_until", "The active hours start and end at the same time.")
        return data

    def _check_target_count(self, kind: str | None, targets: list[str]) -> None:
        if "targets" in self.errors:
            return
        if kind == Rule.TargetKind.POOL and not targets:
            self.add_error("targets", "The pool is empty: give the numbers it holds.")
        if kind == Rule.TargetKind.ONE and len(targets) != 1:
            self.add_error("targets", "Give exactly one target number, or choose a fallback list or a pool.")

    def _check_targets_usable(self, targets: list[str]) -> None:
        """A target whose account cannot receive (banned, disabled…) would leave every decision at "no
        healthy target"; one that is offline now may be back when the rule fires, so it is taken."""
        listed = [self.fields["targets"].devices.get(t) for t in targets]
        unusable = [device for device in listed if device and not device.is_usable]
        if not unusable or "targets" in self.errors:
            return
        statuses = ", ".join(f"“{d.status}”" for d in unusable)
        names = ", ".join(d.alias for d in unusable)
        self.add_error("targets", f"{names} cannot receive a queue: its SparkBot status is {statuses}."
                       if len(unusable) == 1 else
                       f"{names} cannot receive a queue: their SparkBot statuses are {statuses}.")

    def _names(self, device_ids: list[str]) -> str:
        devices = self.fields["targets"].devices
        return ", ".join(devices.get(i).alias if devices.get(i) else i for i in device_ids)
