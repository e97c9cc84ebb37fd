"""All input validation: the reroute form and the queue-stats query."""

import uuid

from django import forms

from ..devices import DeviceList
from ..sparkbot import DEVICE_ID, Device

NOTE_MAX_LENGTH = 500
CHOOSE = "Choose a WhatsApp number from the list."
GONE = "This number is no longer in SparkBot's device list; refresh the devices and choose again."


class DeviceChoiceField(forms.CharField):
    """A device id that must be 24 hex characters and in the current device list."""

    def __init__(self, *, devices: DeviceList, **kwargs):
        super().__init__(max_length=24, error_messages={"required": CHOOSE}, **kwargs)
        self.devices = devices

    def clean(self, value) -> Device | None:
        device_id = super().clean(value).strip().lower()
        if not device_id and not self.required:
            return None
        if not DEVICE_ID.match(device_id):
            raise forms.ValidationError(CHOOSE, code="invalid")
        device = self.devices.get(device_id)
        if device is None:
            raise forms.ValidationError(GONE, code="gone")
        return device


class RerouteForm(forms.Form):
    field_order = ["source", "target", "note", "idempotency_key"]
    note = forms.CharField(
        label="Note", required=False, max_length=NOTE_MAX_LENGTH, strip=True,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why? e.g. Sales-3 goes offline for the night"}),
        help_text=f"Optional; kept in the audit log. At most {NOTE_MAX_LENGTH} characters.",
    )
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def __init__(self, *args, devices: DeviceList, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"] = DeviceChoiceField(devices=devices, label="WhatsApp number")
        self.fields["target"] = DeviceChoiceField(devices=devices, label="Target WhatsApp number")
        self.order_fields(self.field_order)

    def clean_target(self):
        target: Device = self.cleaned_data["target"]
        if not target.is_usable:
            raise forms.ValidationError(
                f"{target.label} cannot receive a queue: its SparkBot status is “{target.status}”.",
                code="unusable",
            )
        return target

    def clean(self):
        data = super().clean()
        source, target = data.get("source"), data.get("target")
        if source and target and source.id == target.id:
            self.add_error("target", "Choose a target number different from the source number.")
        return data

    def selected(self, name: str) -> str:
        """The device id the user picked for a field (or the page was opened with), to select it again."""
        chosen = self.data.get(name) if self.is_bound else self.initial.get(name)
        return (chosen or "").strip().lower()


class PreviewQuery(forms.Form):
    """The numbers of a move to preview: the source alone, or both."""

    def __init__(self, *args, devices: DeviceList, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"] = DeviceChoiceField(devices=devices, required=False)
        self.fields["target"] = DeviceChoiceField(devices=devices, required=False)

    def clean(self):
        data = super().clean()
        source, target = data.get("source"), data.get("target")
        if source and target and source.id == target.id:
            raise forms.ValidationError("Choose a target number different from the source number.")
        return data
