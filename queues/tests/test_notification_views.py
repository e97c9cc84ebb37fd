"""The notifications pages (admins): webhooks with a secret shown once, emails to chosen users, the
delivery log and “send again”."""

import re
from html.parser import HTMLParser

import pytest

from queues.models import Delivery, EmailSubscription, WebhookEndpoint

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{44}")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def new_webhook(client, **fields):
    data = {"name": "n8n alerts", "url": "https://n8n.example.com/webhook/abc", "events": ["reroute.failed"],
            "payload_format": "standard", "active": "on", **fields}
    return client.post("/notifications/webhooks/new/", data)


def test_it_makes_a_webhook_and_shows_its_secret_once(admin_client):
    response = new_webhook(admin_client)
    assert response.status_code == 201 and "no-store" in response["Cache-Control"]
    secret = SECRET.search(response.content.decode()).group(0)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == secret and endpoint.events == ["reroute.failed"]
    assert endpoint.created_by_username == "admin"
    for page in ("/notifications/", f"/notifications/webhooks/{endpoint.pk}/"):
        html = admin_client.get(page).content.decode()
        assert "n8n alerts" in html and secret not in html


def test_it_renews_a_secret_and_the_old_one_is_gone(admin_client):
    new_webhook(admin_client)
    endpoint = WebhookEndpoint.objects.get()
    old = endpoint.secret
    response = admin_client.post(f"/notifications/webhooks/{endpoint.pk}/secret/")
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in response.content.decode()


class _EditFormAction(HTMLParser):
    """Where the form holding the URL box posts to ("" when it posts to the page's own address)."""

    def __init__(self):
        super().__init__()
        self.form_action = self.action = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.form_action = attrs.get("action", "")
        elif tag == "input" and attrs.get("name") == "url":
            self.action = self.form_action


def edit_form_action(html: str) -> str:
    parser = _EditFormAction()
    parser.feed(html)
    assert parser.action is not None, "the page has no form with the URL box"
    return parser.action


@pytest.mark.parametrize("secret_renewed", [False, True], ids=["just made", "secret renewed"])
def test_the_page_that_shows_a_secret_saves_edits_to_the_same_webhook(admin_client, secret_renewed):
    response = new_webhook(admin_client)
    endpoint = WebhookEndpoint.objects.get()
    page = "/notifications/webhooks/new/"
    if secret_renewed:
        page = f"/notifications/webhooks/{endpoint.pk}/secret/"
        response = admin_client.post(page)
    endpoint.refresh_from_db()
    shown_secret = endpoint.secret
    saved = admin_client.post(edit_form_action(response.content.decode()) or page, {
        "name": "n8n alerts, renamed", "url": endpoint.url, "events": endpoint.events,
        "payload_format": endpoint.payload_format, "active": "on"})
    assert saved.status_code == 302
    endpoint.refresh_from_db()
    assert WebhookEndpoint.objects.count() == 1
    assert endpoint.name == "n8n alerts, renamed" and endpoint.secret == shown_secret


def test_the_form_sent_again_makes_no_second_webhook(admin_client):
    page = admin_client.get("/notifications/webhooks/new/").content.decode()
    form_key = re.search(r'name="form_key" value="([^"]+)"', page).group(1)
    first = new_webhook(admin_client, form_key=form_key)
    again = new_webhook(admin_client, form_key=form_key)  # a reload of the answer, or a second click
    endpoint = WebhookEndpoint.objects.get()
    assert first.status_code == 201 and again.status_code == 302
    assert again["Location"] == f"/notifications/webhooks/{endpoint.pk}/"
    shown = admin_client.get(again["Location"]).content.decode()
    assert "“n8n alerts” was made already, from this same form: its secret was shown once, then." in shown
    assert endpoint.secret not in shown and "Make a new secret" in shown


@pytest.mark.parametrize("fields, error", [
    ({"url": "ftp://files.example.com/x"}, "Give an http:// or https:// address."),
    ({"url": "not a url"}, "Enter a valid URL."),
    ({"events": []}, "Choose at least one event."),
    ({"name": ""}, "This field is required."),
])
def test_it_refuses_a_webhook_it_cannot_use(admin_client, fields, error):
    response = new_webhook(admin_client, **fields)
    assert response.status_code == 200 and error in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_it_edits_and_deletes_a_webhook_and_keeps_its_log(admin_client):
    new_webhook(admin_client)
    endpoint = WebhookEndpoint.objects.get()
    Delivery.objects.create(message_id="msg_1", event_type="reroute.failed", about="Reroute #1", channel="webhook",
                            endpoint=endpoint, destination=endpoint.url, body="{}")
    response = admin_client.post(f"/notifications/webhooks/{endpoint.pk}/", {
        "name": "Slack", "url": "https://hooks.slack.com/services/T/B/x", "events": ["reroute.failed",
                                                                                   "handover_run.ended"],
        "payload_format": "slack"})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.payload_format, endpoint.active) == ("Slack", "slack", False)
    admin_client.post(f"/notifications/webhooks/{endpoint.pk}/delete/")
    assert WebhookEndpoint.objects.count() == 0
    assert Delivery.objects.get().destination == "https://n8n.example.com/webhook/abc"


def test_it_emails_only_users_with_an_address(admin_client, make_user):
    with_address = make_user("carol", "Shift manager")
    with_address.email = "carol@example.com"
    with_address.save()
    without = make_user("dave", "Support lead")
    form = admin_client.get("/notifications/emails/new/").content.decode()
    assert "carol" in form and "dave" not in form
    refused = admin_client.post("/notifications/emails/new/", {"user": without.pk, "events": ["reroute.failed"]})
    assert refused.status_code == 200 and EmailSubscription.objects.count() == 0
    admin_client.post("/notifications/emails/new/", {"user": with_address.pk, "events": ["reroute.failed"],
                                                     "active": "on"})
    assert EmailSubscription.objects.get().user == with_address
    assert "carol@example.com" in admin_client.get("/notifications/").content.decode()


def test_it_shows_the_delivery_log_and_sends_again(admin_client, django_capture_on_commit_callbacks):
    new_webhook(admin_client)
    endpoint = WebhookEndpoint.objects.get()
    delivery = Delivery.objects.create(message_id="msg_7", event_type="reroute.failed", about="Reroute #7",
                                       channel="webhook", endpoint=endpoint, destination=endpoint.url,
                                       body='{"type": "reroute.failed"}', status="failed", attempts=6)
    delivery.attempt_log.create(number=6, at=delivery.created_at, ok=False, status_code=500, duration_ms=12,
                                error="The endpoint answered 500; only a 2xx counts as delivered.")
    log = admin_client.get(f"/notifications/deliveries/?endpoint={endpoint.pk}&status=failed").content.decode()
    assert "Reroute #7" in log and "Gave up" in log
    assert "Reroute #7" not in admin_client.get("/notifications/deliveries/?status=succeeded").content.decode()
    page = admin_client.get(f"/notifications/deliveries/{delivery.pk}/").content.decode()
    assert "The endpoint answered 500" in page and "msg_7" in page and "Send again" in page
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(f"/notifications/deliveries/{delivery.pk}/send-again/")
    assert response["Location"] == f"/notifications/deliveries/{delivery.pk}/"
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.resend_by_username == "admin"


@pytest.mark.parametrize("query, error", [
    ("status=zzz", "Status: Select a valid choice. zzz is not one of the available choices."),
    ("endpoint=abc", "Webhook: That webhook is not there (any more): choose one from the list."),
    ("endpoint=999999", "Webhook: That webhook is not there (any more): choose one from the list."),
    ("before=-3", "The page position in this link is not valid: start again from the newest deliveries."),
])
def test_the_delivery_log_says_which_filter_is_wrong_and_shows_nothing(admin_client, query, error):
    new_webhook(admin_client)
    endpoint = WebhookEndpoint.objects.get()
    Delivery.objects.create(message_id="msg_8", event_type="reroute.failed", about="Reroute #8", channel="webhook",
                            endpoint=endpoint, destination=endpoint.url, body="{}")
    response = admin_client.get(f"/notifications/deliveries/?{query}")
    html = response.content.decode()
    assert response.status_code == 200 and "Nothing is shown until the filters are fixed." in html
    assert error in html and "Reroute #8" not in html
    assert html.count('class="card filter-grid"') == 1 and "<title>Delivery log · Notifications</title>" in html


def test_the_delivery_log_keeps_its_filters_on_the_link_to_older_deliveries(admin_client, monkeypatch):
    from queues.views import notifications

    monkeypatch.setattr(notifications, "LOG_PAGE", 2)
    new_webhook(admin_client)
    endpoint = WebhookEndpoint.objects.get()
    for number in range(1, 6):
        Delivery.objects.create(message_id=f"msg_{number}", event_type="reroute.failed", about=f"Reroute #{number}",
                                channel="webhook", endpoint=endpoint, destination=endpoint.url, body="{}",
                                status="failed")
    first = admin_client.get(f"/notifications/deliveries/?endpoint={endpoint.pk}&status=failed").content.decode()
    assert "Reroute #5" in first and "Reroute #4" in first and "Reroute #3" not in first
    older = re.search(r'href="(\?[^"]*before=\d+)"', first).group(1).replace("&amp;", "&")
    assert f"endpoint={endpoint.pk}" in older and "status=failed" in older
    second = admin_client.get(f"/notifications/deliveries/{older}").content.decode()
    assert "Reroute #3" in second and "Reroute #2" in second and "Reroute #4" not in second
