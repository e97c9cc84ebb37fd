"""Notifications: webhooks and emails about what happened, delivered by the workers.

When a reroute or a handover run ends (dispatch signals, wired in QueuesConfig.ready()), the
receiver only writes one `Delivery` row per interested endpoint or person and wakes the sender:
nothing here makes the reroute wait. The sender (`notifications_send`, a Celery task) holds a
lease so that at most one worker process sends at a time, NOTIFY_CONCURRENCY requests at once:
a slow or failing receiver can hold that one process, never the reroutes' others. It yields
its process after PUMP_SECONDS and publishes itself again when there is more to send.

Webhooks are signed as Standard Webhooks do it (the `standardwebhooks` package): `webhook-id`
(the same on every attempt of a message), `webhook-timestamp` and `webhook-signature`. A failed
attempt is tried again after each of NOTIFY_RETRY_DELAYS in turn, never past NOTIFY_GIVE_UP_HOURS
after the event; every attempt is kept in the delivery log, which can send a message again.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Min, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from . import dispatch
from .models import (
    Delivery, DeliveryAttempt, EmailSubscription, HandoverRun, NotificationEvent, NotifierState, Reroute,
    RuleDecision, WebhookEndpoint,
)

logger = logging.getLogger(__name__)
Event = NotificationEvent
PUMP_SECONDS = 30.0  # then the sender hands its worker process back and publishes itself again
EXCERPT = 300
SENDER_NICENESS = 10


# What happened: the receivers -------------------------------------------------------------------


def on_reroute_ended(sender, *, reroute: Reroute, **kwargs) -> None:
    event = Event.REROUTE_SUCCEEDED if reroute.status == Reroute.Status.SUCCEEDED else Event.REROUTE_FAILED
    event_record(event_type=event, about=f"Reroute #{reroute.pk}", data={"reroute": reroute_data(reroute)},
                 subject=reroute_subject(reroute), text=reroute_text(reroute))


def on_handover_run_ended(sender, *, run: HandoverRun, **kwargs) -> None:
    data = run_data(run)
    event_record(event_type=Event.HANDOVER_RUN_ENDED, about=f"Handover run #{run.pk}", data={"handover_run": data},
                 subject=f"Handover “{run.plan_name}” {data['status']}: {data['succeeded']} of {data['total']} "
                         "moves succeeded", text=run_text(data))


RULE_EVENTS = {  # a decision's outcome: its event, and what the rule did in the subject's words
    RuleDecision.Outcome.FIRED: (Event.RULE_FIRED, "fired"),
    RuleDecision.Outcome.WOULD_FIRE: (Event.RULE_DRY_RUN, "would fire (dry run)"),
    RuleDecision.Outcome.NO_HEALTHY_TARGET: (Event.RULE_NO_TARGET, "cannot act"),
}


def on_rules_decided(sender, *, decisions: list[RuleDecision], **kwargs) -> None:
    """Rules fired, would have fired in dry run, or cannot act for want of a healthy target (an
    evaluation's decisions come together)."""
    listeners = listeners_now()
    for decision in decisions:
        _rule_decided(decision, listeners)


def _rule_decided(decision: RuleDecision, listeners: Listeners) -> None:
    event, verb = RULE_EVENTS[decision.outcome]
    rule = decision.rule
    data = {"id": decision.pk, "rule": {"id": rule.pk, "name": rule.name}, "outcome": decision.outcome,
            "source": {"id": decision.source_id, "alias": decision.source_alias}, "message": decision.message,
            "reroute": decision.reroute_id, "at": _iso(decision.at),
            "url": f"{settings.SITE_URL}/rules/{rule.pk}/"}
    event_record(event_type=event, about=f"Rule #{rule.pk}",
                 data={"rule_decision": data}, subject=f"Rule “{rule.name}” {verb} for {decision.source_alias}"[:200],
                 text=f"Rule “{rule.name}” {verb}: {decision.message}", listeners=listeners)


def reroute_data(reroute: Reroute) -> dict:
    return {
        "id": reroute.pk, "status": reroute.status, "origin": reroute.origin,
        "requested_by": reroute.requested_by_username, "note": reroute.note,
        "source": {"id": reroute.source_id, "alias": reroute.source_alias, "phone": reroute.source_phone},
        "target": {"id": reroute.target_id, "alias": reroute.target_alias, "phone": reroute.target_phone},
        "messages_moved": reroute.messages_moved, "error_code": reroute.error_code, "message": reroute.outcome,
        "handover_run": reroute.handover_run_id,
        "created_at": _iso(reroute.created_at), "ended_at": _iso(reroute.ended_at),
        "url": f"{settings.SITE_URL}/reroutes/{reroute.pk}/",
        "api_url": f"{settings.SITE_URL}/api/v1/reroutes/{reroute.pk}",
    }


def reroute_subject(reroute: Reroute) -> str:
    return f"Reroute #{reroute.pk} {reroute.status}: {reroute.source_alias} → {reroute.target_alias}"[:200]


def reroute_text(reroute: Reroute) -> str:
    return f"Reroute #{reroute.pk} {reroute.status}: {reroute.outcome}"


def run_data(run: HandoverRun) -> dict:
    reroutes = [item.reroute for item in run.items.select_related("reroute") if item.reroute]
    return {
        "id": run.pk, "plan_name": run.plan_name, "status": run.status, "trigger": run.trigger,
        "started_by": run.started_by_username, "total": run.items.count(),
        "succeeded": sum(1 for r in reroutes if r.status == Reroute.Status.SUCCEEDED),
        "failed": sum(1 for r in reroutes if r.status == Reroute.Status.FAILED),
        "messages_moved": sum(r.messages_moved or 0 for r in reroutes),
        "created_at": _iso(run.created_at), "ended_at": _iso(run.ended_at),
        "url": f"{settings.SITE_URL}/handovers/runs/{run.pk}/",
        "api_url": f"{settings.SITE_URL}/api/v1/handover-runs/{run.pk}",
    }


def run_text(data: dict) -> str:
    not_run = data["total"] - data["succeeded"] - data["failed"]
    tail = f", {not_run} not run" if not_run else ""
    return (f"Handover “{data['plan_name']}” (run #{data['id']}) {data['status']}: {data['succeeded']} of "
            f"{data['total']} moves succeeded, {data['failed']} failed{tail}; {data['messages_moved']} messages moved.")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z") if moment else None


# Recording an event: one delivery per destination ------------------------------------------------


@dataclass
class Listeners:
    """The active webhook endpoints and email subscriptions, read once for a batch of events."""

    endpoints: list[WebhookEndpoint]
    people: list[EmailSubscription]

    def want(self, event_type: str) -> tuple[list[WebhookEndpoint], list[EmailSubscription]]:
        return ([e for e in self.endpoints if event_type in e.events],
                [s for s in self.people if event_type in s.events and s.user.email and s.user.is_active])


def listeners_now() -> Listeners:
    return Listeners(list(WebhookEndpoint.objects.filter(active=True)),
                     list(EmailSubscription.objects.filter(active=True).select_related("user")))


def event_record(*, event_type: str, about: str, data: dict, subject: str, text: str,
                 listeners: Listeners | None = None) -> int:
    """Write a delivery for every active endpoint and person that wants this event, and wake the sender.
    Returns how many; costs two queries when nobody listens (none with `listeners` read before).

    In a transaction of its own (a savepoint when the caller is in one): a failure here is the
    receiver's alone, never the caller's transaction's.
    """
    endpoints, people = (listeners or listeners_now()).want(event_type)
    if not endpoints and not people:
        return 0
    with transaction.atomic():
        return _record_event(event_type=event_type, about=about, data=data, subject=subject, text=text,
                             endpoints=endpoints, people=people)


def _record_event(*, event_type: str, about: str, data: dict, subject: str, text: str,
                  endpoints: list[WebhookEndpoint], people: list[EmailSubscription]) -> int:
    now = timezone.now()
    message_id = f"msg_{uuid.uuid4().hex}"
    standard = _json({"type": event_type, "timestamp": _iso(now), "data": data})
    slack = _json({"text": _slack_text(text, data)})
    common = {"message_id": message_id, "event_type": event_type, "about": about, "next_attempt_at": now}
    deliveries = [Delivery(channel=Delivery.Channel.WEBHOOK, endpoint=e, destination=e.url,
                           body=slack if e.payload_format == WebhookEndpoint.Format.SLACK else standard, **common)
                  for e in endpoints]
    deliveries += [Delivery(channel=Delivery.Channel.EMAIL, destination=s.user.email, subject=subject,
                            body=_email_text(text, data), **common) for s in people]
    Delivery.objects.bulk_create(deliveries)
    sender_wake()
    return len(deliveries)


def _json(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_text(text: str, data: dict) -> str:
    thing = next(iter(data.values()))
    return f"{_slack_escape(text)} <{thing['url']}|Open in the dashboard>"


def _email_text(text: str, data: dict) -> str:
    thing = next(iter(data.values()))
    return f"{text}\n\nOpen it in the dashboard: {thing['url']}\n\n— the SparkBot queue router\n"


# Waking the sender --------------------------------------------------------------------------------


def _state() -> None:
    if not NotifierState.objects.filter(pk=NotifierState.SINGLETON).exists():
        try:
            NotifierState.objects.create(pk=NotifierState.SINGLETON)
        except IntegrityError:
            pass  # another process made it first


def sender_wake() -> None:
    """Ask for the sender to run, publishing it only if nobody asked since it last looked."""
    _state()
    asked = NotifierState.objects.filter(pk=NotifierState.SINGLETON, wake_requested=False).update(
        wake_requested=True)
    if asked:
        transaction.on_commit(_publish, robust=True)


def _publish(countdown: float = 0) -> None:
    try:
        dispatch.notifications_send(countdown=countdown)
    except Exception as error:  # the periodic run (NOTIFY_TICK_SECONDS) sends them once the queue is back
        logger.warning("task queue unavailable for notifications: %s", type(error).__name__)


# The sender ---------------------------------------------------------------------------------------


def _lease_seconds() -> float:
    return 4 * settings.NOTIFY_TIMEOUT_SECONDS + 60


def _lease_take(owner: str) -> bool:
    _state()
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    return bool(NotifierState.objects.filter(free, pk=NotifierState.SINGLETON).update(
        lease_owner=owner, lease_until=now + timedelta(seconds=_lease_seconds())))


def _lease_release(owner: str) -> None:
    NotifierState.objects.filter(pk=NotifierState.SINGLETON, lease_owner=owner).update(lease_owner="",
                                                                                      lease_until=None)


def notifications_send() -> dict:
    """Send what is due, while it holds the sender's lease; a second sender at the same time does nothing.

    Before it lets go it looks whether new deliveries came meanwhile, so that none waits for the
    periodic run; after PUMP_SECONDS it publishes itself again and hands its process back.
    """
    owner = uuid.uuid4().hex
    totals = {"sent": 0, "failed": 0, "held": False}
    deadline = time.monotonic() + PUMP_SECONDS
    while _lease_take(owner):
        totals["held"] = True
        try:
            Delivery.objects.filter(status=Delivery.Status.SENDING).update(status=Delivery.Status.PENDING)
            finished = _send_due(owner, deadline, totals)
        finally:
            _lease_release(owner)
        if not finished:
            _publish()
            return totals
        if not NotifierState.objects.filter(pk=NotifierState.SINGLETON, wake_requested=True).exists():
            break
    if totals["held"]:  # only the sender that held the lease plans the next run: no chain of empty runs
        _schedule_next()
    return totals


def _lower_priority() -> None:
    """Sender threads yield the CPU to everything else on the machine (reroutes first): a burst of
    deliveries must not slow a reroute down on a small box. Only these threads are reniced."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SENDER_NICENESS)
    except (AttributeError, OSError):
        pass  # not on this platform: the lease alone keeps deliveries to one process


def _send_due(owner: str, deadline: float, totals: dict) -> bool:
    """Send due deliveries in batches; True when none is due any more, False when time ran out."""
    batch_size = settings.NOTIFY_CONCURRENCY * 4
    with ThreadPoolExecutor(max_workers=settings.NOTIFY_CONCURRENCY, initializer=_lower_priority) as pool, \
            _http_client() as client:
        while time.monotonic() < deadline:
            NotifierState.objects.filter(pk=NotifierState.SINGLETON).update(wake_requested=False)
            due = list(Delivery.objects.select_related("endpoint").filter(
                status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now()).order_by(
                "next_attempt_at", "id")[:batch_size])
            if not due:
                return True
            Delivery.objects.filter(pk__in=[d.pk for d in due]).update(status=Delivery.Status.SENDING)
            outcomes = list(pool.map(lambda d: _attempt(d, client), due))
            with transaction.atomic():  # one commit per batch, not one per delivery
                DeliveryAttempt.objects.bulk_create(_record(d, outcome) for d, outcome in zip(due, outcomes))
            for outcome in outcomes:
                totals["sent" if outcome.ok else "failed"] += 1
            _lease_take(owner)  # extends it
    return False


def _schedule_next() -> None:
    """A retry due before the next periodic run is published for its moment."""
    soonest = Delivery.objects.filter(status=Delivery.Status.PENDING).aggregate(at=Min("next_attempt_at"))["at"]
    if soonest is None:
        return
    wait = (soonest - timezone.now()).total_seconds()
    if wait < settings.NOTIFY_TICK_SECONDS:
        _publish(countdown=max(0.0, wait))


def _http_client() -> httpx.Client:
    limits = httpx.Limits(max_connections=settings.NOTIFY_CONCURRENCY)
    return httpx.Client(timeout=settings.NOTIFY_TIMEOUT_SECONDS, follow_redirects=False, limits=limits,
                        headers={"User-Agent": "sparkbot-dash-webhooks/1"})


@dataclass(frozen=True)
class Outcome:
    ok: bool
    at: datetime
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""
    duration_ms: int = 0
    final: bool = False  # retrying cannot help (the endpoint was deleted or turned off)


def _attempt(delivery: Delivery, client: httpx.Client) -> Outcome:
    """One try, in a sender thread: HTTP or email only, no database."""
    at, started = timezone.now(), time.perf_counter()
    if delivery.channel == Delivery.Channel.EMAIL:
        outcome = _send_email(delivery)
    elif delivery.endpoint is None or not delivery.endpoint.active:
        outcome = Outcome(ok=False, at=at, error="The endpoint was deleted or turned off; nothing was sent.",
                          final=True)
    else:
        outcome = _post(delivery, client)
    return Outcome(**{**vars(outcome), "at": at, "duration_ms": round((time.perf_counter() - started) * 1000)})


def signed_headers(*, secret: str, message_id: str, body: str, at: datetime | None = None) -> dict:
    """The Standard Webhooks headers for this body."""
    at = at or datetime.now(dt_timezone.utc)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body),
    }


def _post(delivery: Delivery, client: httpx.Client) -> Outcome:
    headers = signed_headers(secret=delivery.endpoint.secret, message_id=delivery.message_id, body=delivery.body)
    now = timezone.now()
    try:
        response = client.post(delivery.destination, content=delivery.body.encode(), headers=headers)
    except httpx.TimeoutException:
        return Outcome(ok=False, at=now, error=f"No answer within {settings.NOTIFY_TIMEOUT_SECONDS:g} seconds.")
    except httpx.HTTPError as error:
        return Outcome(ok=False, at=now, error=f"Could not reach the endpoint ({type(error).__name__}).")
    excerpt = response.text[:EXCERPT] if response.content else ""
    if 200 <= response.status_code < 300:
        return Outcome(ok=True, at=now, status_code=response.status_code, excerpt=excerpt)
    return Outcome(ok=False, at=now, status_code=response.status_code, excerpt=excerpt,
                   error=f"The endpoint answered {response.status_code}; only a 2xx counts as delivered.")


def _send_email(delivery: Delivery) -> Outcome:
    now = timezone.now()
    try:
        EmailMessage(subject=delivery.subject, body=delivery.body, to=[delivery.destination]).send()
    except Exception as error:  # SMTP refusals, timeouts, a mail server down
        return Outcome(ok=False, at=now, error=f"The mail server did not take it ({type(error).__name__}: "
                                               f"{str(error)[:200]}).")
    return Outcome(ok=True, at=now)


def _record(delivery: Delivery, outcome: Outcome) -> DeliveryAttempt:
    """Move the delivery on after an attempt; returns the attempt's log row, to be written with the batch."""
    number = delivery.attempts + 1
    attempt = DeliveryAttempt(
        delivery=delivery, number=number, at=outcome.at, ok=outcome.ok, status_code=outcome.status_code,
        error=outcome.error[:500], response_excerpt=outcome.excerpt[:500], duration_ms=outcome.duration_ms,
        requested_by_username=delivery.resend_by_username)
    fields = {"attempts": number, "resend_by_username": ""}
    if outcome.ok:
        fields.update(status=Delivery.Status.SUCCEEDED, ended_at=timezone.now(), next_attempt_at=None)
    else:
        retry_at = None if outcome.final else next_attempt_time(delivery=delivery, failed_attempts=number)
        fields.update(status=Delivery.Status.PENDING if retry_at else Delivery.Status.FAILED,
                      next_attempt_at=retry_at, ended_at=None if retry_at else timezone.now())
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    return attempt


def next_attempt_time(*, delivery: Delivery, failed_attempts: int) -> datetime | None:
    """When to try again after this many failed attempts, or None: out of delays, or past the give-up time."""
    delays = settings.NOTIFY_RETRY_DELAYS
    if failed_attempts > len(delays):
        return None
    at = timezone.now() + timedelta(seconds=delays[failed_attempts - 1])
    give_up_at = delivery.created_at + timedelta(hours=settings.NOTIFY_GIVE_UP_HOURS)
    return at if at <= give_up_at else None


# The delivery log's "send again" ----------------------------------------------------------------


class DeliveryBusy(Exception):
    """The delivery is being sent right now."""


def delivery_resend(*, delivery: Delivery, user) -> None:
    """Send it once more now, whatever came before; its retries follow if it fails again (within the
    give-up time from the event)."""
    changed = Delivery.objects.filter(pk=delivery.pk).exclude(status=Delivery.Status.SENDING).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), ended_at=None,
        resend_by_username=user.get_username())
    if not changed:
        raise DeliveryBusy()
    sender_wake()


def deliveries_logged(*, endpoint: WebhookEndpoint | None, status: str | None, before: int | None):
    """The delivery log, newest first: one endpoint's or all, of one status or any, older than `before`."""
    deliveries = Delivery.objects.order_by("-id")
    if endpoint:
        deliveries = deliveries.filter(endpoint=endpoint)
    if status:
        deliveries = deliveries.filter(status=status)
    if before:
        deliveries = deliveries.filter(pk__lt=before)
    return deliveries


# Setting up endpoints ---------------------------------------------------------------------------


def webhook_create(*, endpoint: WebhookEndpoint, form_key: uuid.UUID | None, username: str) -> WebhookEndpoint:
    """Save a new endpoint with a new secret; the endpoint this form (`form_key`) made already, if it made one."""
    made = WebhookEndpoint.objects.filter(form_key=form_key).first() if form_key else None
    if made:
        return made
    endpoint.secret, endpoint.form_key, endpoint.created_by_username = webhook_secret_new(), form_key, username
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError:  # the same form, sent twice at once: the other request saved it
        endpoint.pk = None
        return WebhookEndpoint.objects.get(form_key=form_key)
    return endpoint


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
