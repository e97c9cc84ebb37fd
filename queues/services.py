"""Every write: requesting a reroute, running one attempt of it, and ending it."""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import audit, sparkbot
from .models import Reroute, RerouteEvent
from .sparkbot import Device, QueueStats, SparkBotError

logger = logging.getLogger(__name__)
Kind = RerouteEvent.Kind
QUEUE_DOWN_MESSAGE = ("The reroute is recorded, but the task queue is not answering: "
                      "it will start by itself when the queue is back.")


class SourceBusy(Exception):
    """The source device already has a reroute queued or running."""

    def __init__(self, active: Reroute):
        super().__init__(f"{active.source_label} already has reroute {active.pk} in progress")
        self.active = active


# Requesting -----------------------------------------------------------------------------


def reroute_request(
    *, source: Device, target: Device, note: str, user, origin: str = Reroute.Origin.WEB,
    idempotency_key: uuid.UUID | None = None, username: str = "", handover_run=None,
) -> Reroute:
    """Record a reroute (status queued) and hand it to a worker once the row is committed.

    The same idempotency key always yields the same reroute; a source with a reroute
    already queued or running raises SourceBusy. `username` names who asked when no
    user did (a scheduled handover).
    """
    key = idempotency_key or uuid.uuid4()
    existing = Reroute.objects.filter(idempotency_key=key).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            reroute = Reroute.objects.create(
                requested_by=user, requested_by_username=username or user.get_username(), origin=origin,
                idempotency_key=key, note=note, handover_run=handover_run,
                source_id=source.id, source_alias=source.alias, source_phone=source.phone,
                target_id=target.id, target_alias=target.alias, target_phone=target.phone,
                search_text=search_text(note, source, target),
            )
            _event(reroute, Kind.REQUESTED,
                   f"{reroute.requested_by_username} asked to move the queue of {source.label} to {target.label}.")
            transaction.on_commit(lambda: _enqueue_first_attempt(reroute))
    except IntegrityError as error:
        return _existing_or_busy(key, source.id, error)
    return reroute


def search_text(note: str, source: Device, target: Device) -> str:
    """What the history's free-text filter searches, folded to lower case once, here."""
    return " ".join([note, source.alias, source.phone, target.alias, target.phone]).lower()


def _existing_or_busy(key: uuid.UUID, source_id: str, error: IntegrityError) -> Reroute:
    existing = Reroute.objects.filter(idempotency_key=key).first()
    if existing:
        return existing
    active = Reroute.objects.filter(source_id=source_id, status__in=Reroute.ACTIVE).first()
    if active:
        raise SourceBusy(active)
    raise error


def _enqueue(reroute_id: int, *, attempt: int, countdown: float = 0) -> None:
    from .tasks import reroute_run  # tasks import this module

    reroute_run.apply_async(args=(reroute_id, attempt), countdown=countdown)


def _enqueue_first_attempt(reroute: Reroute) -> None:
    """Hand a committed reroute to the workers; if the task queue is down, say so and let the sweeper retry."""
    try:
        _enqueue(reroute.pk, attempt=1)
    except Exception as error:
        logger.warning("task queue unavailable for reroute %s: %s", reroute.pk, type(error).__name__)
        _event(reroute, Kind.QUEUE_DOWN, QUEUE_DOWN_MESSAGE, {"error": type(error).__name__})


# Running --------------------------------------------------------------------------------


def reroute_claim(*, reroute_id: int, attempt: int) -> Reroute | None:
    """Take the reroute for this attempt, under a row lock; None if it is not ours to run.

    Attempt 1 takes a queued reroute; attempt n takes a running one whose attempt n-1
    scheduled it. A duplicate or late task message therefore does nothing.
    """
    with transaction.atomic():
        reroute = Reroute.objects.select_for_update().filter(pk=reroute_id).first()
        if reroute is None:
            return None
        first = attempt == 1 and reroute.status == Reroute.Status.QUEUED
        follow_up = attempt > 1 and reroute.status == Reroute.Status.RUNNING and reroute.attempts == attempt - 1
        if not (first or follow_up):
            return None
        reroute.status = Reroute.Status.RUNNING
        reroute.attempts = attempt
        reroute.started_at = reroute.started_at or timezone.now()
        reroute.save(update_fields=["status", "attempts", "started_at", "updated_at"])
        _event(reroute, Kind.STARTED, f"Attempt {attempt} of {settings.SPARKBOT_MAX_ATTEMPTS} started.")
    return reroute


def reroute_execute(*, reroute_id: int, attempt: int = 1) -> float | None:
    """Run one attempt. Returns the seconds to wait before the next attempt, or None when done."""
    reroute = reroute_claim(reroute_id=reroute_id, attempt=attempt)
    if reroute is None:
        return None
    try:
        _route(reroute)
    except SparkBotError as error:
        return _after_error(reroute, error)
    except Exception as error:  # never leave a reroute running because of a bug
        logger.exception("reroute %s crashed", reroute.pk)
        _finish_failed(reroute, "internal_error", f"The dashboard failed while routing ({type(error).__name__}); "
                       "the error is in the worker log.")
    return None


def _route(reroute: Reroute) -> None:
    """Read the source's queue, route it unless it is empty, read it again.

    The first reading is kept as "before". Every attempt reads the queue afresh before
    routing, so an attempt after a lost one finds an empty queue instead of routing twice.
    """
    client = sparkbot.client()
    if _pauses_source(reroute) and reroute.routed_at is None:
        _call(reroute, "pause the queue of the source", lambda: client.queue_set_status(reroute.source_id, "pause"))
    if reroute.routed_at is None:
        now = _call(reroute, "read the queue of the source", lambda: client.queue_stats(reroute.source_id)[0],
                    record=lambda stats: {} if reroute.stats_before else {"stats_before": _stats_dict(stats)})
        if now.total == 0:
            _finish_empty(reroute, now)
            return
        _call(reroute, "route the queue", lambda: client.route_queue(reroute.source_id, reroute.target_id),
              record=lambda reply: {"routed_at": timezone.now(), "api_reply": reply.data})
    after = _call(reroute, "read the queue again", lambda: client.queue_stats(reroute.source_id)[0])
    _finish_succeeded(reroute, moved=_moved(reroute.stats_before, after), stats_after=_stats_dict(after))


def _finish_empty(reroute: Reroute, now: QueueStats) -> None:
    if reroute.stats_before.get("total"):  # it held messages when first read: a lost attempt routed them
        _event(reroute, Kind.RECOVERED,
               f"The queue of {reroute.source_alias} is empty now: the route call of an earlier, "
               "interrupted attempt went through. It is not routed again.")
    _finish_succeeded(reroute, moved=_moved(reroute.stats_before, now), stats_after=_stats_dict(now))


def _call(reroute: Reroute, what: str, call: Callable[[], Any],
          record: Callable[[Any], dict] = lambda result: {}) -> Any:
    """Make one SparkBot call; record its duration and answer as an event, with `record(result)`'s
    fields of the reroute saved in the same transaction."""
    started = time.perf_counter()
    try:
        result = call()
    except SparkBotError as error:
        seconds = time.perf_counter() - started
        reroute.sparkbot_seconds += seconds
        _event(reroute, Kind.CALL, f"Tried to {what}: {error.code} ({error.status_code or 'no answer'}).",
               {"what": what, "ms": round(seconds * 1000, 1), "error": error.code,
                "status": error.status_code, "detail": error.detail[:300]})
        raise
    seconds = time.perf_counter() - started
    reroute.sparkbot_seconds += seconds
    fields = record(result)
    with transaction.atomic():
        _event(reroute, Kind.CALL, f"SparkBot answered: {what}.", {"what": what, "ms": round(seconds * 1000, 1)})
        if fields:
            _save(reroute, **fields)
    return result


def _after_error(reroute: Reroute, error: SparkBotError) -> float | None:
    if isinstance(error, sparkbot.DeviceNotFound) and reroute.stats_before is not None:
        missing = _missing_device(reroute)
        sentence = error.sentence(missing, reroute.source_label)
    else:
        sentence = error.sentence(reroute.source_label, reroute.target_label)
    if error.retryable and reroute.attempts < settings.SPARKBOT_MAX_ATTEMPTS:
        wait = retry_delay(attempt=reroute.attempts, retry_after=getattr(error, "retry_after", None))
        _save(reroute)
        _event(reroute, Kind.RETRY,
               f"{sentence} Retrying in {wait:.1f} s (attempt {reroute.attempts + 1} of "
               f"{settings.SPARKBOT_MAX_ATTEMPTS}).",
               {"wait_seconds": round(wait, 3), "error": error.code})
        return wait
    _finish_failed(reroute, error.code, sentence)
    return None


def _missing_device(reroute: Reroute) -> str:
    """After a 404 on the route call, tell which of the two numbers SparkBot no longer knows."""
    try:
        sparkbot.client().device(reroute.target_id)
    except sparkbot.DeviceNotFound:
        return reroute.target_label
    except SparkBotError:
        return f"{reroute.source_label} or {reroute.target_label}"
    return reroute.source_label


def retry_delay(*, attempt: int, retry_after: float | None) -> float:
    """Retry-After when SparkBot sent one (capped), else exponential backoff with full jitter."""
    cap = settings.SPARKBOT_RETRY_MAX_SECONDS
    if retry_after is not None:
        return min(retry_after, cap)
    ceiling = min(cap, settings.SPARKBOT_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def reroute_retry_scheduled(*, reroute_id: int, attempt: int, wait: float) -> None:
    """Hand the next attempt to the broker; if that fails, end the reroute honestly."""
    try:
        _enqueue(reroute_id, attempt=attempt, countdown=wait)
    except Exception as error:
        logger.error("could not schedule attempt %s of reroute %s: %s", attempt, reroute_id, error)
        reroute = Reroute.objects.get(pk=reroute_id)
        _finish_failed(reroute, "queue_unavailable",
                       "The next attempt could not be scheduled because the task queue is down.")


# Ending ---------------------------------------------------------------------------------


def _finish_succeeded(reroute: Reroute, *, moved: int | None, **fields) -> None:
    _end(reroute, Reroute.Status.SUCCEEDED, {"messages_moved": moved}, messages_moved=moved, **fields)


def _finish_failed(reroute: Reroute, code: str, sentence: str) -> None:
    _end(reroute, Reroute.Status.FAILED, {"error": code}, error_code=code, error_message=sentence)


def _pauses_source(reroute: Reroute) -> bool:
    return reroute.handover_run_id is not None and reroute.handover_run.pause_sources


def _resume_source(reroute: Reroute) -> None:
    """A handover that paused the source sets it back to active, whatever the outcome."""
    if not _pauses_source(reroute):
        return
    try:
        _call(reroute, "set the queue of the source back to active",
              lambda: sparkbot.client().queue_set_status(reroute.source_id, "active"))
    except SparkBotError as error:
        _event(reroute, Kind.CALL, f"The queue of {reroute.source_label} is still paused: "
               f"{error.sentence(reroute.source_label, reroute.target_label)} Set it to active in SparkBot.")


def _end(reroute: Reroute, status: str, detail: dict, **fields) -> None:
    """End the reroute: its last event, then its place in the audit chain, in one transaction."""
    _resume_source(reroute)
    with transaction.atomic():
        for name, value in {"status": status, "ended_at": timezone.now(), **fields}.items():
            setattr(reroute, name, value)
        _event(reroute, status, reroute.outcome, detail)  # the event kinds "succeeded" and "failed" are the statuses
        audit.chain_append(reroute)
        _save(reroute, status=status, ended_at=reroute.ended_at, chain_seq=reroute.chain_seq,
              chain_hash=reroute.chain_hash, **fields)
        transaction.on_commit(lambda: _handovers_notify(reroute), robust=True)


def _handovers_notify(reroute: Reroute) -> None:
    """A reroute ended: move on its handover, and any handover waiting for its source.

    Its own handover moves on here and now, saving a trip through the task queue per move;
    the periodic tick covers this process dying first.
    """
    from . import handovers  # handovers import this module
    from .tasks import handover_advance

    if reroute.handover_run_id:
        handovers.handover_advance(run_id=reroute.handover_run_id)
    for run_id in set(handovers.handover_runs_waiting_for(source_id=reroute.source_id)) - {reroute.handover_run_id}:
        handover_advance.delay(run_id)


def reroutes_sweep() -> dict[str, int]:
    """Find lost work: reroutes the task queue never delivered, and reroutes whose worker died.

    Each row is re-checked under its lock, so that sweeps running at once act once.
    """
    now = timezone.now()
    queued_before = now - timedelta(seconds=settings.REROUTE_REQUEUE_AFTER_SECONDS)
    silent_since = now - timedelta(seconds=settings.REROUTE_STUCK_AFTER_SECONDS)
    waiting = Reroute.objects.filter(status=Reroute.Status.QUEUED, updated_at__lt=queued_before)
    stuck = Reroute.objects.filter(status=Reroute.Status.RUNNING, updated_at__lt=silent_since)
    requeued = sum(_requeue_waiting(reroute_id=pk, queued_before=queued_before)
                   for pk in list(waiting.values_list("pk", flat=True)))
    recovered = sum(_recover_stuck(reroute_id=pk, silent_since=silent_since)
                    for pk in list(stuck.values_list("pk", flat=True)))
    return {"requeued": requeued, "recovered": recovered}


def _requeue_waiting(*, reroute_id: int, queued_before) -> bool:
    try:
        with transaction.atomic():
            reroute = Reroute.objects.select_for_update().filter(
                pk=reroute_id, status=Reroute.Status.QUEUED, updated_at__lt=queued_before).first()
            if reroute is None:
                return False
            _event(reroute, Kind.RECOVERED, "Handed to the task queue again: it had not started.")
            _save(reroute)  # a sign of life: the next sweep waits again
            _enqueue(reroute_id, attempt=1)  # inside the transaction: if it fails, nothing is recorded
    except Exception as error:
        logger.warning("task queue still unavailable for reroute %s: %s", reroute_id, type(error).__name__)
        return False
    return True


def _recover_stuck(*, reroute_id: int, silent_since) -> bool:
    """Give a reroute whose worker died its next attempt, or end it when it has had them all."""
    with transaction.atomic():
        reroute = Reroute.objects.select_for_update().filter(
            pk=reroute_id, status=Reroute.Status.RUNNING, updated_at__lt=silent_since).first()
        if reroute is None:
            return False
        if reroute.attempts >= settings.SPARKBOT_MAX_ATTEMPTS:
            _finish_failed(reroute, "interrupted",
                           f"The worker stopped during the last attempt. Check the queues of "
                           f"{reroute.source_alias} and {reroute.target_alias} before trying again.")
            return True
        _event(reroute, Kind.RECOVERED,
               f"Attempt {reroute.attempts} stopped without an answer (its worker died). Attempt "
               f"{reroute.attempts + 1} will read the queue again before routing.")
        _save(reroute)
        next_attempt = reroute.attempts + 1
        transaction.on_commit(lambda: _enqueue(reroute_id, attempt=next_attempt), robust=True)
    return True


# Helpers --------------------------------------------------------------------------------


def _event(reroute: Reroute, kind: str, message: str, detail: dict | None = None) -> RerouteEvent:
    return RerouteEvent.objects.create(reroute=reroute, kind=kind, message=message, detail=detail)


def _save(reroute: Reroute, **fields) -> None:
    """Save these fields, the SparkBot time counted in memory so far, and a sign of life."""
    for name, value in fields.items():
        setattr(reroute, name, value)
    reroute.save(update_fields={*fields, "sparkbot_seconds", "updated_at"})


def _stats_dict(stats: QueueStats) -> dict:
    return asdict(stats)


def _moved(before: dict | None, after: QueueStats) -> int | None:
    """Messages that left the source, measured from its queue before and after the route."""
    if not before or before.get("total") is None or after.total is None:
        return None
    return max(0, before["total"] - after.total)
