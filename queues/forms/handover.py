"""Handover plans: the plan's settings and its source-to-target pairs."""

import zoneinfo
from datetime import datetime

from django import forms
from django.utils import timezone

from ..devices import DeviceList
from ..models import HandoverPlan
from .reroute import DeviceChoiceField

TIME_ZONES = sorted(zoneinfo.available_timezones() - {"localtime"})
MORE_ROWS = 5


class HandoverPlanForm(forms.ModelForm):
    run_at = forms.DateTimeField(
        label="Run once at", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"], help_text="In the plan's time zone.",
    )
    daily_time = forms.TimeField(label="Run every day at", required=False,
                                 widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    time_zone = forms.ChoiceField(choices=[(z, z) for z in TIME_ZONES], initial="UTC")

    class Meta:
        model = HandoverPlan
        fields = ["name", "pause_sources", "in_order", "schedule", "run_at", "daily_time", "time_zone"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.run_at and not self.is_bound:  # show the stored instant as the plan's local time
            local = self.instance.run_at.astimezone(zoneinfo.ZoneInfo(self.instance.time_zone))
            self.initial["run_at"] = local.strftime("%Y-%m-%dT%H:%M")

    def clean(self):
        data = super().clean()
        zone = zoneinfo.ZoneInfo(data.get("time_zone") or "UTC")
        if data.get("run_at"):  # the wall-clock time typed, in the plan's zone
            data["run_at"] = datetime.combine(data["run_at"].date(), data["run_at"].time(), tzinfo=zone)
        schedule = data.get("schedule")
        if schedule == HandoverPlan.Schedule.ONCE:
            if not data.get("run_at"):
                self.add_error("run_at", "Give the date and time to run this plan.")
            elif data["run_at"] <= timezone.now():
                self.add_error("run_at", "This time has passed; choose a time in the future.")
        if schedule == HandoverPlan.Schedule.DAILY and not data.get("daily_time"):
            self.add_error("daily_time", "Give the time of day to run this plan.")
        return data


class PairForm(forms.Form):
    def __init__(self, *args, devices: DeviceList, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"] = DeviceChoiceField(devices=devices, label="WhatsApp number", required=False)
        self.fields["target"] = DeviceChoiceField(devices=devices, label="Target WhatsApp number", required=False)

    def selected(self, name: str) -> str:
        """The device id chosen for a field, to select it again in the rendered options."""
        if self.is_bound:
            return (self.data.get(self.add_prefix(name)) or "").strip().lower()
        return self.initial.get(name, "")

    def clean(self):
        data = super().clean()
        source, target = data.get("source"), data.get("target")
        if bool(source) != bool(target) and not self.errors:
            self.add_error("target" if source else "source", "Choose both numbers of the pair, or neither.")
        if source and target and source.id == target.id:
            self.add_error("target", "A number cannot hand its queue to itself.")
        if target and not target.is_usable:
            self.add_error("target", f"{target.label} cannot receive a queue: its SparkBot status is “{target.status}”.")
        return data


class BasePairFormSet(forms.BaseFormSet):
    def __init__(self, *args, devices: DeviceList, in_order: bool, **kwargs):
        self.devices, self.in_order = devices, in_order
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {"devices": self.devices}

    @property
    def empty_form(self):
        return self.form(auto_id=self.auto_id, prefix=self.add_prefix("__prefix__"), devices=self.devices,
                         empty_permitted=True, use_required_attribute=False)

    def pairs(self) -> list[tuple[str, str]]:
        """(source id, target id) of every filled, kept row, in order."""
        rows = [f.cleaned_data for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        return [(row["source"].id, row["target"].id) for row in rows if row.get("source") and row.get("target")]

    def clean(self):
        if any(self.errors):
            return
        pairs = self.pairs()
        if not pairs:
            raise forms.ValidationError("Add at least one pair of numbers.")
        sources = [source for source, _ in pairs]
        repeated = {s for s in sources if sources.count(s) > 1}
        if repeated:
            raise forms.ValidationError(f"{self._names(repeated)} appears as a source more than once: "
                                        "a number hands its queue over once per plan.")
        chained = {target for _, target in pairs} & set(sources)
        if chained and not self.in_order:
            raise forms.ValidationError(
                f"{self._names(chained)} both receives and hands over a queue. Tick “run the moves one after "
                "another, in the listed order” and order the pairs as they must run, or change the plan.")

    def _names(self, ids) -> str:
        return ", ".join(self.devices.get(i).label for i in sorted(ids))


PairFormSet = forms.formset_factory(PairForm, formset=BasePairFormSet, extra=0, can_delete=True)


def pair_formset(*, data=None, plan: HandoverPlan | None, devices: DeviceList, in_order: bool,
                 more_rows: bool = False) -> BasePairFormSet:
    """The pairs of a plan (or the posted ones) with a few empty rows to fill."""
    if data is not None:
        data = data.copy()
        total = int(data.get("pairs-TOTAL_FORMS") or 0)
        data["pairs-TOTAL_FORMS"] = str(total + MORE_ROWS if more_rows else total)
        return PairFormSet(data, prefix="pairs", devices=devices, in_order=in_order)
    initial = [{"source": p.source_id, "target": p.target_id} for p in plan.pairs.all()] if plan and plan.pk else []
    formset = forms.formset_factory(PairForm, formset=BasePairFormSet, extra=MORE_ROWS, can_delete=True)
    return formset(initial=initial, prefix="pairs", devices=devices, in_order=in_order)
