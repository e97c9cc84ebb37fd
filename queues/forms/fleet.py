"""The overview's filters and a number's reroutes pager: validated GET forms whose values are the URL's query."""

from __future__ import annotations

from django import forms
from django.utils.http import urlencode

from ..fleet import FleetFilters

SEARCH_MAX_LENGTH = 100
PAGE_MAX = 100_000
BIGINT_MAX = 2**63 - 1


class FleetFilterForm(forms.Form):
    """Every filter of /numbers/ and the page; all optional. A form with errors shows no rows."""

    cannot_deliver = forms.BooleanField(label="Cannot deliver now", required=False)
    has_messages = forms.BooleanField(label="Has queued messages", required=False)
    q = forms.CharField(
        label="Search", required=False, max_length=SEARCH_MAX_LENGTH,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "alias or phone", "autocomplete": "off"}),
        help_text="Part of an alias or a phone number, or a number's id.",
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=PAGE_MAX,
                              error_messages={key: "The page in this link is not valid: start again from page 1."
                                              for key in ("invalid", "min_value", "max_value")})

    def __init__(self, data=None, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(data if data is not None else {}, **kwargs)  # always bound: no filter is a valid filter

    def clean_q(self) -> str:
        return " ".join(self.cleaned_data["q"].split())

    def filters(self) -> FleetFilters:
        """The valid filters (call after is_valid())."""
        data = self.cleaned_data
        return FleetFilters(cannot_deliver=data["cannot_deliver"], has_messages=data["has_messages"], q=data["q"])

    @property
    def page_number(self) -> int:
        return self.cleaned_data.get("page") or 1

    def query(self, *, page: int | None = None) -> str:
        """The canonical query string of these filters and a page, '' when there is none."""
        data = self.cleaned_data
        params = {name: "1" for name in ("cannot_deliver", "has_messages") if data.get(name)}
        if data.get("q"):
            params["q"] = data["q"]
        if page and page > 1:
            params["page"] = str(page)
        return f"?{urlencode(params)}" if params else ""

    @property
    def visible_errors(self) -> list[tuple[str, str]]:
        return [(self.fields[name].label or "Page", message) for name in self.errors for message in self.errors[name]]


class NumberReroutesCursor(forms.Form):
    """Where the list of a number's reroutes stands: before=<id> (older) or after=<id> (newer)."""

    CURSOR_ERROR = "The page position in this link is not valid: start again from the newest reroutes."
    before = forms.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
    after = forms.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)

    def __init__(self, data=None, **kwargs):
        super().__init__(data if data is not None else {}, **kwargs)
        for name in ("before", "after"):
            self.fields[name].error_messages = {key: self.CURSOR_ERROR for key in ("invalid", "min_value", "max_value")}

    def clean(self):
        data = super().clean()
        if data.get("before") and data.get("after"):
            raise forms.ValidationError(self.CURSOR_ERROR)
        return data

    def cursor(self) -> dict:
        """{"before": id}, {"after": id} or {} (the newest); {} for an invalid position too."""
        if not self.is_valid():
            return {}
        return {name: self.cleaned_data[name] for name in ("before", "after") if self.cleaned_data.get(name)}

    @staticmethod
    def query(**cursor: int | None) -> str:
        params = {name: str(value) for name, value in cursor.items() if value}
        return f"?{urlencode(params)}" if params else ""
