"""Setting up notifications: webhook endpoints and the people who get emails."""

from __future__ import annotations

from urllib.parse import urlparse

from django import forms
from django.contrib.auth import get_user_model

from ..models import EmailSubscription, NotificationEvent, WebhookEndpoint

EVENTS_HELP = "Rules' events are sent once failover rules record their decisions."


class EventsField(forms.MultipleChoiceField):
    def __init__(self, **kwargs):
        super().__init__(label="Events", choices=NotificationEvent.choices, widget=forms.CheckboxSelectMultiple,
                         error_messages={"required": "Choose at least one event."}, **kwargs)


class WebhookEndpointForm(forms.ModelForm):
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
