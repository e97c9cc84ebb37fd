"""Setting up notifications: webhook endpoints and the people who get emails."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

from django import forms
from django.contrib.auth import get_user_model
from django.utils.http import urlencode

from ..models import Delivery, EmailSubscription, NotificationEvent, WebhookEndpoint
from .fleet import BIGINT_MAX

EVENTS_HELP = "Rules' events are sent once failover rules record their decisions."


class EventsField(forms.MultipleChoiceField):
    def __init__(self, **kwargs):
        super().__init__(label="Events", choices=NotificationEvent.choices, widget=forms.CheckboxSelectMultiple,
                         error_messages={"required": "Choose at least one event."}, **kwargs)


class WebhookEndpointForm(forms.ModelForm):
    form_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False)
    url = forms.URLField(label="URL", max_length=500, assume_scheme="https",
                         help_text="Where the dashboard POSTs; https:// unless it is on this machine or network.")
    events = EventsField()

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "events", "payload_format", "active"]
        labels = {"payload_format": "Payload", "active": "Send to it"}
        help_texts = {"payload_format": "Slack-compatible text works with Slack, Mattermost and Discord's "
                                        "/slack webhooks; the JSON event is signed for your own receivers."}

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if urlparse(url).scheme not in ("http", "https"):
            raise forms.ValidationError("Give an http:// or https:// address.", code="scheme")
        return url


class EmailSubscriptionForm(forms.ModelForm):
    events = EventsField()

    class Meta:
        model = EmailSubscription
        fields = ["user", "events", "active"]
        labels = {"active": "Send to them"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = get_user_model().objects.filter(is_active=True).exclude(
            email="").order_by("username")
        self.fields["user"].help_text = "Only active users with an email address are listed."


class DeliveryFilterForm(forms.Form):
    """The delivery log's filters and where its page stands (before=<id>); all optional. A form with
    errors shows no rows."""

    PAGE_ERROR = "The page position in this link is not valid: start again from the newest deliveries."
    endpoint = forms.ModelChoiceField(
        label="Webhook", queryset=WebhookEndpoint.objects.all(), required=False, empty_label="Any (and emails)",
        error_messages={"invalid_choice": "That webhook is not there (any more): choose one from the list."})
    status = forms.ChoiceField(label="Status", choices=[("", "Any status"), *Delivery.Status.choices], required=False)
    before = forms.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX,
                                error_messages=dict.fromkeys(("invalid", "min_value", "max_value"), PAGE_ERROR))

    def __init__(self, data=None, **kwargs):
        kwargs.setdefault("label_suffix", "")
        kwargs.setdefault("auto_id", "%s")
        super().__init__(data if data is not None else {}, **kwargs)  # always bound: no filter is a valid filter

    def filters(self) -> dict:
        """The valid filters, as notify.deliveries_logged takes them (call after is_valid())."""
        return {name: self.cleaned_data[name] or None for name in ("endpoint", "status", "before")}

    def query(self, *, before: int) -> str:
        """The query string of these filters at the page of deliveries older than `before`."""
        data = self.cleaned_data
        params = {"endpoint": data["endpoint"].pk if data["endpoint"] else "", "status": data["status"],
                  "before": before}
        return "?" + urlencode({name: value for name, value in params.items() if value})

    @property
    def visible_errors(self) -> list[str]:
        return [f"{self.fields[name].label}: {message}" if self.fields[name].label else message
                for name in self.errors for message in self.errors[name]]
