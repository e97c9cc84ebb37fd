"""The history's filters: a validated GET form whose cleaned values are the URL's canonical query."""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils.http import urlencode

from ..history import HistoryFilters
from ..models import Reroute
from ..sparkbot import DEVICE_ID

BIGINT_MAX = 2**63 - 1
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
SEARCH_MIN_LENGTH, SEARCH_MAX_LENGTH = 3, 100
FILTER_FIELDS = ["date_from", "date_to", "device", "user", "status", "origin", "handover", "rule", "q"]
CURSOR_FIELDS = ["before", "after"]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")


class HistoryFilterForm(forms.Form):
    """Every filter of /history/ and the page position; all optional, all checked.

    A bound form with errors filters nothing: the view shows the errors and no rows.
    """

    date_from = forms.DateField(label="From", required=False, widget=DateInput(),
                                help_text="First day, in the dashboard's time zone.")
    date_to = forms.DateField(label="To", required=False, widget=DateInput(), help_text="Last day, included.")
    device = forms.CharField(
        label="Device", required=False, max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "24-character device id", "spellcheck": "false",
                                      "autocomplete": "off"}),
        help_text="As source or target.",
    )
    user = forms.CharField(label="User", required=False, max_length=150,
                           widget=forms.TextInput(attrs={"autocomplete": "off", "list": "history-users"}))
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *Reroute.Status.choices])
    origin = forms.ChoiceField(label="Origin", required=False, choices=[("", "Any origin"), *Reroute.Origin.choices])
    handover = forms.IntegerField(label="Handover run", required=False, min_value=1, max_value=BIGINT_MAX,
                                  widget=forms.NumberInput(attrs={"placeholder": "run #"}))
    rule = forms.IntegerField(label="Rule", required=False, min_value=1, max_value=BIGINT_MAX,
                              widget=forms.NumberInput(attrs={"placeholder": "rule #"}))
    q = forms.CharField(
        label="Search", required=False, max_length=SEARCH_MAX_LENGTH,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "note, alias or phone", "autocomplete": "off"}),
        help_text=f"At least {SEARCH_MIN_LENGTH} characters.",
    )
    # The position: never rendered as inputs, so that changing a filter starts from the newest again.
    before = forms.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
    after = forms.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)

    CURSOR_ERROR = "The page position in this link is not valid: start again from the newest reroutes."

    def __init__(self, data=None, **kwargs):
        super().__init__(data if data is not None else {}, **kwargs)  # always bound: no filter is a valid filter
        for name in CURSOR_FIELDS:
            self.fields[name].error_messages = {key: self.CURSOR_ERROR for key in
                                                ("invalid", "min_value", "max_value")}

    # Field by field ------------------------------------------------------------------------

    def _clean_day(self, name: str) -> date | None:
        day = self.cleaned_data.get(name)
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise forms.ValidationError(
                f"Enter a date between {FIRST_DAY:%Y-%m-%d} and {LAST_DAY:%Y-%m-%d}.", code="out_of_range")
        return day

    def clean_date_from(self):
        return self._clean_day("date_from")

    def clean_date_to(self):
        return self._clean_day("date_to")

    def clean_device(self) -> str:
        device = self.cleaned_data["device"].strip().lower()
        if device and not DEVICE_ID.match(device):
            raise forms.ValidationError(
                "A device id is 24 characters, 0-9 and a-f (open a reroute to copy one).", code="invalid")
        return device

    def clean_user(self) -> str:
        return self.cleaned_data["user"].strip()

    def clean_q(self) -> str:
        text = " ".join(self.cleaned_data["q"].split()).lower()  # search_text is lower case too
        if text and len(text) < SEARCH_MIN_LENGTH:
            raise forms.ValidationError(
                f"Type at least {SEARCH_MIN_LENGTH} characters to search notes, aliases and phones.", code="short")
        return text

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The last day is before the first day.")
        if data.get("before") and data.get("after"):
            self.add_error("before", self.CURSOR_ERROR)
        return data

    # What the views need ---------------------------------------------------------------------

    def filters(self) -> HistoryFilters:
        """The valid filters (call after is_valid())."""
        data = self.cleaned_data
        return HistoryFilters(
            date_from=data["date_from"], date_to=data["date_to"], device=data["device"], user=data["user"],
            status=data["status"], origin=data["origin"], handover=data["handover"], rule=data["rule"],
            q=data["q"],
        )

    def filter_params(self) -> dict[str, str]:
        """The non-empty filters as URL parameters, in a fixed order (call after is_valid())."""
        params = {}
        for name in FILTER_FIELDS:
            value = self.cleaned_data.get(name)
            if value not in (None, ""):
                params[name] = value.isoformat() if isinstance(value, date) else str(value)
        return params

    def query(self, **cursor: int | None) -> str:
        """The canonical query string of these filters and a position, '' when there is none."""
        params = {**self.filter_params(), **{k: str(v) for k, v in cursor.items() if v is not None}}
        return f"?{urlencode(params)}" if params else ""

    @property
    def cursor_errors(self) -> list[str]:
        return sorted({message for name in CURSOR_FIELDS for message in self.errors.get(name, [])})

    @property
    def visible_errors(self) -> list[tuple[str, str]]:
        """(label, message) of every filter error, for the summary above the results."""
        return [(self.fields[name].label, message) for name in FILTER_FIELDS for message in self.errors.get(name, [])]
