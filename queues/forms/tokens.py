"""Making a personal API token: a name, and an optional expiry."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

EXPIRY_CHOICES = [("", "Never"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]


class TokenForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, strip=True,
                           widget=forms.TextInput(attrs={"placeholder": "e.g. n8n night-shift workflow",
                                                         "autocomplete": "off"}),
                           help_text="What uses it, so that you know which one to revoke.")
    expires_in = forms.TypedChoiceField(label="Expires", choices=EXPIRY_CHOICES, required=False, coerce=int,
                                        empty_value=None)

    def expires_at(self) -> datetime | None:
        """The end of the last day (dashboard time), or None (call after is_valid())."""
        days = self.cleaned_data["expires_in"]
        if days is None:
            return None
        last_day = timezone.localdate() + timedelta(days=days)
        return timezone.make_aware(datetime.combine(last_day, time.max))
