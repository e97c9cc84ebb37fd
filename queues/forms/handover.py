"""Handover plans: the plan's settings (its moves are in plan.py)."""

import zoneinfo
from datetime import datetime

from django import forms
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from ..models import HandoverPlan

TIME_ZONES = sorted(zoneinfo.available_timezones() - {"localtime"})
LATEST_YEAR = 9000  # far enough; a year near 9999 overflows when turned into UTC


class TimeZoneSelect(forms.Select):
    """The ~600 time zones, rendered once per process (Django's per-option templates cost ~10 ms a page)."""

    _options = ""

    def render(self, name, value, attrs=None, renderer=None):
        if not TimeZoneSelect._options:
            TimeZoneSelect._options = "".join(f'<option value="{escape(z)}">{escape(z)}</option>' for z in TIME_ZONES)
        chosen = value[0] if isinstance(value, (list, tuple)) and value else value
        options = TimeZoneSelect._options
        if chosen in TIME_ZONES:
            options = options.replace(f'value="{escape(chosen)}"', f'value="{escape(chosen)}" selected', 1)
        return format_html("<select name=\"{}\"{}>", name, flatatt(self.build_attrs(self.attrs, attrs))) + mark_safe(
            options + "</select>")


class HandoverPlanForm(forms.ModelForm):
    run_at = forms.DateTimeField(
        label="Run once at", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"], help_text="In the plan's time zone.",
    )
    daily_time = forms.TimeField(label="Run every day at", required=False,
                                 widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    time_zone = forms.ChoiceField(choices=[(z, z) for z in TIME_ZONES], initial="UTC", widget=TimeZoneSelect)

    class Meta:
        model = HandoverPlan
        fields = ["name", "pause_sources", "in_order", "schedule", "run_at", "daily_time", "time_zone"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("pause_sources", "in_order"):  # the sentence under each box says what it does
            self.fields[name].widget.attrs["aria-describedby"] = f"id_{name}-help"
        if self.instance.run_at and not self.is_bound:  # show the stored instant as the plan's local time
            local = self.instance.run_at.astimezone(zoneinfo.ZoneInfo(self.instance.time_zone))
            self.initial["run_at"] = local.strftime("%Y-%m-%dT%H:%M")

    def clean(self):
        data = super().clean()
        zone = zoneinfo.ZoneInfo(data.get("time_zone") or "UTC")
        if data.get("run_at") and data["run_at"].year > LATEST_YEAR:
            self.add_error("run_at", f"Choose a date before the year {LATEST_YEAR}.")
        elif data.get("run_at"):  # the wall-clock time typed, in the plan's zone
            data["run_at"] = datetime.combine(data["run_at"].date(), data["run_at"].time(), tzinfo=zone)
        schedule = data.get("schedule")
        if schedule == HandoverPlan.Schedule.ONCE and "run_at" not in self.errors:
            if not data.get("run_at"):
                self.add_error("run_at", "Give the date and time to run this plan.")
            elif data["run_at"] <= timezone.now() and not self._run_once_kept(data["run_at"]):
                self.add_error("run_at", "This time has passed; choose a time in the future.")
        if schedule == HandoverPlan.Schedule.DAILY and not data.get("daily_time"):
            self.add_error("daily_time", "Give the time of day to run this plan.")
        return data

    def _run_once_kept(self, run_at) -> bool:
        """The plan's one-time run, left as it was: once it has passed, the plan is still saved (its moves
        or name edited); it does not run again (next_run_time)."""
        stored = self.instance
        return stored.pk is not None and stored.schedule == HandoverPlan.Schedule.ONCE and stored.run_at == run_at
