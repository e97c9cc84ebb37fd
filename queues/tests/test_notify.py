"""Notifications as a service: who gets which event, signing, retries and giving up, Slack text, email,
"send again", and one sender at a time. The sender runs here, in the test process, against a real
HTTP receiver that verifies each signature with the standardwebhooks package."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from queues import handovers, notify, services
from queues.models import Delivery, EmailSubscription, HandoverPlan, NotifierState, Reroute, WebhookEndpoint
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def endpoint(url, events=("reroute.failed", "reroute.succeeded"), **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name=fields.pop("name", "n8n"), url=url, secret=notify.webhook_secret_new(),
                                          events=list(events), **fields)


def end_a_reroute(lead, django_capture_on_commit_callbacks, *, fail=False, sandbox=None) -> Reroute:
    from queues import devices

    found = devices.device_list()
    with django_capture_on_commit_callbacks(execute=False):
        reroute = services.reroute_request(source=found.get(SALES_3), target=found.get(SALES_4), note="n", user=lead)
    if fail:
        sandbox.fault(route="*", status=401, times=5)
    with django_capture_on_commit_callbacks(execute=True):  # the end's receivers run; the sender is not published
        services.reroute_execute(reroute_id=reroute.pk)
    reroute.refresh_from_db()
    return reroute


def test_it_writes_one_delivery_per_endpoint_and_person_that_wants_the_event(lead, make_user, sandbox,
                                                                              django_capture_on_commit_callbacks):
    wants = endpoint("https://a.example.com/", events=["reroute.failed"], name="failures")
    endpoint("https://b.example.com/", events=["reroute.succeeded"], name="successes")
    endpoint("https://c.example.com/", events=["reroute.failed"], name="off", active=False)
    admin = make_user("admin", "Admin")
    admin.email = "admin@example.com"
    admin.save()
    EmailSubscription.objects.create(user=admin, events=["reroute.failed"])
    reroute = end_a_reroute(lead, django_capture_on_commit_callbacks, fail=True, sandbox=sandbox)
    deliveries = Delivery.objects.order_by("channel")
    assert [(d.channel, d.destination) for d in deliveries] == [("email", "admin@example.com"),
                                                                ("webhook", wants.url)]
    assert {d.event_type for d in deliveries} == {"reroute.failed"} and len({d.message_id for d in deliveries}) == 1
    webhook = deliveries.get(channel="webhook")
    assert webhook.about == f"Reroute #{reroute.pk}" and webhook.status == "pending"
    assert NotifierState.objects.get().wake_requested is True


def test_it_writes_nothing_when_nobody_listens(lead, sandbox, django_capture_on_commit_callbacks):
    end_a_reroute(lead, django_capture_on_commit_callbacks)
    assert Delivery.objects.count() == 0


def test_it_signs_each_webhook_as_standard_webhooks_do(lead, sandbox, receiver, django_capture_on_commit_callbacks):
    hook = endpoint("")
    server = receiver(secret=hook.secret)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(url=server.url)
    reroute = end_a_reroute(lead, django_capture_on_commit_callbacks)
    assert notify.notifications_send()["sent"] == 1
    (call,) = server.received
    assert call.verified and call.answered == 200
    assert call.headers["webhook-id"] == Delivery.objects.get().message_id
    assert abs(int(call.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 10
    assert call.payload["type"] == "reroute.succeeded"
    data = call.payload["data"]["reroute"]
    assert data["id"] == reroute.pk and data["messages_moved"] == 37 and data["origin"] == "web"
    assert data["message"] == "Moved 37 messages from Sales-3 to Sales-4."
    assert data["api_url"].endswith(f"/api/v1/reroutes/{reroute.pk}")
    with pytest.raises(Exception):
        Webhook(notify.webhook_secret_new()).verify(call.body, call.headers)  # another secret does not verify
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 1 and delivery.attempt_log.get().status_code == 200


def test_it_tries_again_after_each_delay_with_the_same_id_until_a_2xx(lead, sandbox, receiver, settings,
                                                                      django_capture_on_commit_callbacks):
    settings.NOTIFY_RETRY_DELAYS = [0, 0, 0]
    hook = endpoint("")
    server = receiver(secret=hook.secret, answers=[500, 503])
    WebhookEndpoint.objects.filter(pk=hook.pk).update(url=server.url)
    end_a_reroute(lead, django_capture_on_commit_callbacks)
    notify.notifications_send()
    assert [c.answered for c in server.received] == [500, 503, 200]
    assert len({c.headers["webhook-id"] for c in server.received}) == 1 and all(c.verified for c in server.received)
    delivery = Delivery.objects.get()
    assert delivery.status == "succeeded"
    assert [(a.number, a.ok, a.status_code) for a in delivery.attempt_log.all()] == [
        (1, False, 500), (2, False, 503), (3, True, 200)]
    assert "only a 2xx counts" in delivery.attempt_log.first().error


def test_it_gives_up_after_the_last_delay(lead, sandbox, receiver, settings, django_capture_on_commit_callbacks):
    settings.NOTIFY_RETRY_DELAYS = [0]
    hook = endpoint("")
    server = receiver(secret=hook.secret, answers=[500, 500, 500])
    WebhookEndpoint.objects.filter(pk=hook.pk).update(url=server.url)
    end_a_reroute(lead, django_capture_on_commit_callbacks)
    notify.notifications_send()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 2 and delivery.ended_at is not None


def test_it_plans_retries_from_the_delays_and_never_past_a_day(settings):
    settings.NOTIFY_RETRY_DELAYS = [5, 300, 1800, 7200, 18000, 36000]
    settings.NOTIFY_GIVE_UP_HOURS = 24
    fresh = Delivery(created_at=timezone.now())
    soon = notify.next_attempt_time(delivery=fresh, failed_attempts=1)
    assert 4 <= (soon - timezone.now()).total_seconds() <= 6
    old = Delivery(created_at=timezone.now() - timedelta(hours=20))
    assert notify.next_attempt_time(delivery=old, failed_attempts=6) is None  # 10 h more would pass the day
    assert notify.next_attempt_time(delivery=old, failed_attempts=4) is not None  # 5 h more is still within it
    assert notify.next_attempt_time(delivery=fresh, failed_attempts=7) is None  # out of delays


def test_it_gives_up_on_an_unreachable_endpoint_when_the_day_is_over(lead, sandbox, settings,
                                                                      django_capture_on_commit_callbacks):
    settings.NOTIFY_TIMEOUT_SECONDS = 0.5
    endpoint("http://127.0.0.1:9/nothing-listens-here")
    end_a_reroute(lead, django_capture_on_commit_callbacks)
    Delivery.objects.update(created_at=timezone.now() - timedelta(hours=24))
    notify.notifications_send()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert delivery.attempt_log.get().error == "Could not reach the endpoint (ConnectError)."


def test_it_sends_slack_compatible_text_when_asked(lead, sandbox, receiver, django_capture_on_commit_callbacks):
    hook = endpoint("", payload_format="slack")
    server = receiver(secret=hook.secret)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(url=server.url)
    sandbox.control("POST", f"/devices/{SALES_3}", {"alias": "Sales <3> & co"})
    from queues import devices

    devices.device_list_forget()
    reroute = end_a_reroute(lead, django_capture_on_commit_callbacks)
    notify.notifications_send()
    text = server.received[0].payload["text"]
    assert text.startswith(f"Reroute #{reroute.pk} succeeded: Moved 37 messages from Sales &lt;3&gt; &amp; co to "
                           "Sales-4.")
    assert text.endswith(f"/reroutes/{reroute.pk}/|Open in the dashboard>")


def test_it_emails_the_chosen_people(lead, make_user, sandbox, django_capture_on_commit_callbacks):
    admin = make_user("admin", "Admin")
    admin.email = "admin@example.com"
    admin.save()
    EmailSubscription.objects.create(user=admin, events=["reroute.failed"])
    reroute = end_a_reroute(lead, django_capture_on_commit_callbacks, fail=True, sandbox=sandbox)
    notify.notifications_send()
    (message,) = mail.outbox
    assert message.to == ["admin@example.com"]
    assert message.subject == f"Reroute #{reroute.pk} failed: Sales-3 → Sales-4"
    assert "SparkBot refused the API key (401)." in message.body and f"/reroutes/{reroute.pk}/" in message.body
    assert Delivery.objects.get().status == "succeeded"


def test_it_tells_when_a_handover_run_ended(make_user, sandbox, receiver, django_capture_on_commit_callbacks):
    hook = endpoint("", events=["handover_run.ended"])
    server = receiver(secret=hook.secret)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(url=server.url)
    plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_3, SALES_4), (SALES_1, SALES_2)],
                               user=None)
    with django_capture_on_commit_callbacks(execute=True):
        run = handovers.handover_start(plan=plan, user=make_user("manager", "Shift manager"))
    with django_capture_on_commit_callbacks(execute=True):
        handovers.handover_advance(run_id=run.pk)
    for reroute in Reroute.objects.all():
        with django_capture_on_commit_callbacks(execute=True):
            services.reroute_execute(reroute_id=reroute.pk)
    notify.notifications_send()
    (call,) = server.received
    data = call.payload["data"]["handover_run"]
    assert call.payload["type"] == "handover_run.ended"
    assert (data["plan_name"], data["status"], data["total"], data["succeeded"], data["messages_moved"]) == (
        "Evening", "finished", 2, 2, 49)


def test_it_sends_again_on_request_and_says_who_asked(lead, admin_user, sandbox, receiver, settings,
                                                      django_capture_on_commit_callbacks):
    settings.NOTIFY_RETRY_DELAYS = []
    hook = endpoint("")
    server = receiver(secret=hook.secret, answers=[500])
    WebhookEndpoint.objects.filter(pk=hook.pk).update(url=server.url)
    end_a_reroute(lead, django_capture_on_commit_callbacks)
    notify.notifications_send()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    with django_capture_on_commit_callbacks(execute=False):
        notify.delivery_resend(delivery=delivery, user=admin_user)
    notify.notifications_send()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and [c.answered for c in server.received] == [500, 200]
    assert delivery.attempt_log.last().requested_by_username == "admin"


def test_it_lets_one_sender_send_at_a_time(lead, sandbox, django_capture_on_commit_callbacks):
    endpoint("https://n8n.example.com/")
    end_a_reroute(lead, django_capture_on_commit_callbacks)
    NotifierState.objects.update(lease_owner="another-process", lease_until=timezone.now() + timedelta(minutes=1))
    assert notify.notifications_send() == {"sent": 0, "failed": 0, "held": False}
    assert Delivery.objects.get().status == "pending"


def test_it_marks_undelivered_work_of_a_dead_sender_due_again(lead, sandbox, receiver,
                                                               django_capture_on_commit_callbacks):
    hook = endpoint("")
    server = receiver(secret=hook.secret)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(url=server.url)
    end_a_reroute(lead, django_capture_on_commit_callbacks)
    Delivery.objects.update(status="sending")  # its sender died mid-batch; its lease ran out
    NotifierState.objects.update(lease_owner="dead", lease_until=timezone.now() - timedelta(seconds=1))
    notify.notifications_send()
    assert Delivery.objects.get().status == "succeeded" and len(server.received) == 1


def test_it_tells_when_a_rule_fired_or_would_fire_in_dry_run(manager, sandbox, settings):
    from queues import monitor
    from queues.models import Rule

    settings.MONITOR_CALLS_PER_MINUTE = 6000
    endpoint("https://rules.example.com/", events=["rule.fired", "rule.dry_run"], name="rules")
    real = Rule.objects.create(name="Real", owner=manager, owner_username="manager", enabled=True, dry_run=False,
                               sources=[SALES_1], targets=[SALES_4], minutes=0)
    Rule.objects.create(name="Trial", owner=manager, owner_username="manager", enabled=True, dry_run=True,
                        sources=[SALES_3], targets=[SALES_2], minutes=0, condition="overflow", messages=30)
    sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    monitor.monitor_cycle()  # reads the fleet, then the rules decide
    deliveries = {d.event_type: d for d in Delivery.objects.all()}
    assert set(deliveries) == {"rule.fired", "rule.dry_run"}
    fired = deliveries["rule.fired"]
    assert fired.about == f"Rule #{real.pk}" and "Sales-1 offline for 0 s holding 12 messages" in fired.body
    assert "Would move the queue of Sales-3 to Sales-2 (dry run)" in deliveries["rule.dry_run"].body


def test_it_tells_once_when_a_rule_cannot_act_for_want_of_a_healthy_target(manager, sandbox, settings):
    from queues import monitor
    from queues.models import MonitorState, Rule
    from sparkbot_sandbox.seed import OFFLINE_DEVICE

    settings.MONITOR_CALLS_PER_MINUTE = 6000
    endpoint("https://rules.example.com/", events=["rule.no_target"], name="rules")
    stuck = Rule.objects.create(name="Stuck", owner=manager, owner_username="manager", enabled=True, dry_run=False,
                                sources=[SALES_1], targets=[OFFLINE_DEVICE], minutes=0)
    sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
    monitor.monitor_cycle()
    MonitorState.objects.update(devices_read_at=None)
    monitor.monitor_cycle()  # the same situation again: nothing new to tell
    delivery = Delivery.objects.get()
    assert delivery.event_type == "rule.no_target" and delivery.about == f"Rule #{stuck.pk}"
    decision = json.loads(delivery.body)["data"]["rule_decision"]
    assert decision["outcome"] == "no_target" and decision["rule"]["name"] == "Stuck"
    assert "no healthy target: Café Zürich — Kundendienst cannot deliver now (offline" in decision["message"]
