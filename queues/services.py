"""Every write of a reroute: requesting it, running one attempt of it, ending it, and finding lost ones.

Fencing: an attempt keeps the reroute's `fence` value from when it took the reroute. Each write
it makes goes ahead only while the reroute is active and the fence is still its own: one
conditional UPDATE both checks that and takes the row's lock (`_fenced`, `_fenced_write`). The
sweeper bumps the fence when it recovers a silent attempt, so a late attempt can never end a
reroute a second time: it writes one note saying it came late, and nothing else.

Routed means routed: once SparkBot accepted the route call, the reroute ends `succeeded`
(with the count unconfirmed if the queue cannot be read again), never `failed`. When the
last attempt cannot tell whether its route call went through, the queue is read before the
reroute ends.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import audit, bulk, dispatch, sentences, sparkbot
from .device_names import names_device
from .models import Reroute, RerouteEvent
from .sentences import PAUSE, READ, READ_AGAIN, ROUTE
from .sparkbot import Device, QueueStats, SparkBotError

logger = logging.getLogger(__name__)
Kind = RerouteEvent.Kind
QUEUE_DOWN_MESSAGE = sentences.QUEUE_DOWN
PAUSABLE = ("active", "reject")  # statuses that deliver; "pause" and "freeze" already hold delivery


class SourceBusy(Exception):
    """The source device already has a reroute queued or running."""

    def __init__(self, active: Reroute):
        super().__init__(f"{active.source_label} already has reroute {active.pk} in progress")
        self.active = active


class KeyReused(Exception):
    """The idempotency key belongs to another user's request, or to a request with other parameters."""

    message = ("This request key was already used for a different request. "
               "Reload the page and submit again.")

    def __init__(self):
        super().__init__(self.message)


class Superseded(Exception):
    """This attempt is no longer the reroute's current one: it was recovered by the sweeper, or it ended."""

    def __init__(self, *, ended: bool):
        super().__init__("superseded")
        self.ended = ended
        self.late = ""


class RouteOutcomeUnknown(Exception):
    """The route call failed in a way that leaves open whether SparkBot carried it out."""

    def __init__(self, error: SparkBotError):
        super().__init__(error.code)
        self.error = error


# Requesting -----------------------------------------------------------------------------


def reroute_request(
    *, source: Device, target: Device, note: str, user, origin: str = Reroute.Origin.WEB,
    idempotency_key: uuid.UUID | None = None, username: str = "", handover_run=None, rule=None,
) -> Reroute:
    """Record a reroute (status queued) and hand it to a worker once the row is committed.

    The same idempotency key, from the same user with the same parameters, always yields the
    same reroute; from anyone else or for anything else it raises KeyReused. A source with a
    reroute already queued or running raises SourceBusy. `username` names who asked when no
    user did (a scheduled handover).
    """
    key = idempotency_key or uuid.uuid4()
    asked = Reroute(
        requested_by=user, requested_by_username=username or user.get_username(), origin=origin,
        idempotency_key=key, note=note, handover_run=handover_run, rule=rule, rule_name=rule.name if rule else "",
        source_id=source.id, source_alias=source.alias, source_phone=source.phone,
        target_id=target.id, target_alias=target.alias, target_phone=target.phone,
        search_text=search_text(note, source, target),
    )
    requested = RerouteEvent(kind=Kind.REQUESTED, message=sentences.requested(
        asked.requested_by_username, source.label, target.label, rule_name=asked.rule_name))
    try:  # a key used before fails the insert: _existing_or_busy tells which request it was
        bulk.insert_with_child(asked, requested, link="reroute")
    except IntegrityError as error:
        return _existing_or_busy(asked, error)
    transaction.on_commit(lambda: _publish_first_attempt(asked))
    return asked


def reroute_sent_again(*, idempotency_key: uuid.UUID, user, origin: str, source: str, target: str,
                       note: str, username: str = "") -> Reroute | None:
    """The reroute an earlier request with this key made, when this request is that one sent again
    (its numbers named by id, phone or alias; `username` as for reroute_request). A retry is answered
    with it whatever SparkBot's device list says now: a number that changed since must not turn a move
    that happened into a refusal. None for a key not used yet; raises KeyReused for a key used for
    another request."""
    existing = Reroute.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    same = (existing.requested_by_id == (user.pk if user else None) and existing.origin == origin
            and existing.requested_by_username == (username or user.get_username())
            and existing.note == note.strip()
            and names_device(source, device_id=existing.source_id, phone=existing.source_phone,
                             alias=existing.source_alias)
            and names_device(target, device_id=existing.target_id, phone=existing.target_phone,
                             alias=existing.target_alias))
    if not same:
        raise KeyReused()
    return existing


REQUEST_IDENTITY = ("requested_by_id", "requested_by_username", "origin", "handover_run_id", "rule_id",
                    "source_id", "target_id", "note")


def _same_request_or_refuse(existing: Reroute, asked: Reroute) -> Reroute:
    if any(getattr(existing, name) != getattr(asked, name) for name in REQUEST_IDENTITY):
        raise KeyReused()
    return existing


def search_text(note: str, source: Device, target: Device) -> str:
    """What the history's free-text filter searches, folded to lower case once, here."""
    return " ".join([note, source.alias, source.phone, target.alias, target.phone]).lower()


def _existing_or_busy(asked: Reroute, error: IntegrityError) -> Reroute:
    existing = Reroute.objects.filter(idempotency_key=asked.idempotency_key).first()
    if existing:
        return _same_request_or_refuse(existing, asked)
    active = Reroute.objects.filter(source_id=asked.source_id, status__in=Reroute.ACTIVE).first()
    if active:
        raise SourceBusy(active)
    raise error


def _publish_first_attempt(reroute: Reroute) -> None:
    """Hand a committed reroute to the workers; if the task queue is down, say so and let the sweeper retry."""
    try:
        dispatch.reroute_attempt(reroute.pk, attempt=1)
    except Exception as error:
        logger.warning("task queue unavailable for reroute %s: %s", reroute.pk, type(error).__name__)
        _event(reroute, Kind.QUEUE_DOWN, sentences.QUEUE_DOWN, {"error": type(error).__name__})


# Running --------------------------------------------------------------------------------


def reroute_claim(*, reroute_id: int, attempt: int) -> Reroute | None:
    """Take the reroute for this attempt, under a row lock; None if it is not ours to run.

    Attempt 1 takes a queued reroute; attempt n takes a running one whose attempt n-1
    scheduled it (or whose silent attempt n-1 the sweeper recovered). A duplicate or late
    task message therefore does nothing. Taking it bumps the fence.
    """
    ours = (Q(status=Reroute.Status.QUEUED) if attempt == 1
            else Q(status=Reroute.Status.RUNNING, attempts=attempt - 1))
    now = timezone.now()
    taken = {"status": Reroute.Status.RUNNING, "attempts": attempt, "fence": F("fence") + 1, "updated_at": now,
             "started_at": Coalesce("started_at", Value(now, output_field=DateTimeField()))}
    started = RerouteEvent(reroute_id=reroute_id, kind=Kind.STARTED, message=sentences.started(attempt))
    return bulk.update_then_insert(Reroute, reroute_id, ours, taken, started)


def reroute_execute(*, reroute_id: int, attempt: int = 1) -> float | None:
    """Run one attempt. Returns the seconds to wait before the next attempt, or None when done."""
    reroute = reroute_claim(reroute_id=reroute_id, attempt=attempt)
    if reroute is None:
        return None
    return _run_claimed(reroute)


def _run_claimed(reroute: Reroute) -> float | None:
    """Run an attempt that took the reroute; if it turns out superseded, it notes so and stops."""
    try:
        return _attempt(reroute)
    except Superseded as superseded:
        _note_superseded(reroute, superseded)
    return None


def _attempt(reroute: Reroute) -> float | None:
    try:
        _route(reroute)
    except RouteOutcomeUnknown as unknown:
        return _after_error(reroute, unknown.error, route_outcome_unknown=True)
    except SparkBotError as error:
        return _after_error(reroute, error)
    except Superseded:
        raise
    except Exception as error:  # never leave a reroute running because of a bug
        logger.exception("reroute %s crashed", reroute.pk)
        _finish_failed(reroute, "internal_error", f"The dashboard failed while routing ({type(error).__name__}); "
                       "the error is in the worker log.")
    return None


def _route(reroute: Reroute) -> None:
    """Read the source's queue, route it unless it is empty, read it again.

    The first reading is kept as "before". Every attempt reads the queue afresh before
    routing, so an attempt after a lost one finds an empty queue instead of routing twice.
    A handover that pauses its sources keeps the queue's status from the first reading and
    sets it back at the end.
    """
    client = sparkbot.client()
    if reroute.routed_at is None:
        first = not reroute.stats_before
        now = _call(reroute, READ, lambda: client.queue_stats(reroute.source_id)[0],
                    record=lambda stats: _first_reading(reroute, stats) if first else {})
        if first:
            _note_status_unknown(reroute, now)
        if now.total == 0:
            _finish_empty(reroute, now)
            return
        if reroute.source_queue_status:
            _call(reroute, PAUSE, lambda: client.queue_set_status(reroute.source_id, "pause"))
        try:
            _call(reroute, ROUTE, lambda: client.route_queue(reroute.source_id, reroute.target_id),
                  record=lambda reply: {"routed_at": timezone.now(), "api_reply": reply.for_audit})
        except SparkBotError as error:
            if error.retryable:  # a timeout or 5xx may come after SparkBot did the work
                raise RouteOutcomeUnknown(error) from error
            raise
    after = _call(reroute, READ_AGAIN, lambda: client.queue_stats(reroute.source_id)[0])
    _finish_succeeded(reroute, moved=_moved(reroute.stats_before, after), stats_after=_stats_dict(after))


def _first_reading(reroute: Reroute, stats: QueueStats) -> dict:
    fields = {"stats_before": _stats_dict(stats)}
    if _pauses_source(reroute) and stats.total and stats.status in PAUSABLE:
        fields["source_queue_status"] = stats.status
    return fields


def _note_status_unknown(reroute: Reroute, stats: QueueStats) -> None:
    """A handover that pauses its sources cannot pause one whose status SparkBot did not say."""
    if _pauses_source(reroute) and stats.total and stats.status is None:
        with _fenced(reroute):
            _event(reroute, Kind.CALL, sentences.not_paused_status_unknown(reroute.source_label))


def _finish_empty(reroute: Reroute, now: QueueStats) -> None:
    if reroute.stats_before.get("total"):  # it held messages when first read: a lost attempt routed them
        with _fenced(reroute):
            _event(reroute, Kind.RECOVERED, sentences.earlier_route_went_through(reroute.source_alias))
    _finish_succeeded(reroute, moved=_moved(reroute.stats_before, now), stats_after=_stats_dict(now))


def _call(reroute: Reroute, what: str, call: Callable[[], Any],
          record: Callable[[Any], dict] = lambda result: {}) -> Any:
    """Make one SparkBot call; record its duration and answer as an event, with `record(result)`'s
    fields of the reroute, in one fenced write. Each answer is a sign of life."""
    started = time.perf_counter()
    try:
        result = call()
    except SparkBotError as error:
        seconds = time.perf_counter() - started
        reroute.sparkbot_seconds += seconds
        sentence = sentences.call_failed(what, error)
        _fenced_write(reroute, Kind.CALL, sentence, sentences.call_detail(what, seconds, error), late=sentence)
        raise
    seconds = time.perf_counter() - started
    reroute.sparkbot_seconds += seconds
    sentence = sentences.call_answered(what)
    _fenced_write(reroute, Kind.CALL, sentence, sentences.call_detail(what, seconds), late=sentence,
                  fields=record(result))
    return result


def _after_error(reroute: Reroute, error: SparkBotError, *, route_outcome_unknown: bool = False) -> float | None:
    sentence = _error_sentence(reroute, error)
    if error.retryable and reroute.attempts < settings.SPARKBOT_MAX_ATTEMPTS:
        wait = retry_delay(attempt=reroute.attempts, retry_after=getattr(error, "retry_after", None))
        with _fenced(reroute):
            _event(reroute, Kind.RETRY, sentences.retrying(sentence, wait, reroute.attempts + 1),
                   {"wait_seconds": round(wait, 3), "error": error.code})
        return wait
    if route_outcome_unknown or (error.retryable and (reroute.stats_before or {}).get("total")):
        # this attempt, or an earlier one, may have routed without an answer: read the queue to tell
        _settle(reroute, code=error.code, sentence=sentence)
    else:
        _finish_failed(reroute, error.code, sentence)
    return None


def _error_sentence(reroute: Reroute, error: SparkBotError) -> str:
    if isinstance(error, sparkbot.DeviceNotFound) and reroute.stats_before is not None:
        return error.sentence(_missing_device(reroute), reroute.source_label)
    return error.sentence(reroute.source_label, reroute.target_label)


def _missing_device(reroute: Reroute) -> str:
    """After a 404 on the route call, tell which of the two numbers SparkBot no longer knows."""
    try:
        sparkbot.client().device(reroute.target_id)
    except sparkbot.DeviceNotFound:
        return reroute.target_label
    except SparkBotError:
        return f"{reroute.source_label} or {reroute.target_label}"
    return reroute.source_label


def _settle(reroute: Reroute, *, code: str, sentence: str) -> None:
    """The last attempt is over and its route call may have gone through unrecorded: read the queue
    to tell, then end. If SparkBot cannot be read, the reroute stays running and the sweeper settles
    it after REROUTE_STUCK_AFTER_SECONDS."""
    before = (reroute.stats_before or {}).get("total")
    if reroute.routed_at is None and not before:
        _finish_failed(reroute, code, sentence)  # nothing was there to route, or never read: nothing moved
        return
    try:
        now = _call(reroute, READ_AGAIN, lambda: sparkbot.client().queue_stats(reroute.source_id)[0])
    except SparkBotError as error:
        if reroute.routed_at:
            _finish_failed(reroute, error.code, _error_sentence(reroute, error))  # ends succeeded, unconfirmed
            return
        if not error.retryable:  # reading again will not help (the key, a removed number): say what is known
            _finish_failed(reroute, code, f"{sentence} {sentences.not_checked(_error_sentence(reroute, error))}")
            return
        with _fenced(reroute):
            _event(reroute, Kind.RECOVERED, sentences.route_outcome_unknown(
                reroute.source_alias, _error_sentence(reroute, error), settings.REROUTE_STUCK_AFTER_SECONDS))
        return
    if reroute.routed_at:
        _finish_succeeded(reroute, moved=_moved(reroute.stats_before, now), stats_after=_stats_dict(now))
    elif now.total == 0:
        _finish_empty(reroute, now)
    else:
        _finish_failed(reroute, code, sentences.nothing_moved(sentence, reroute.source_alias, now.total),
                       stats_after=_stats_dict(now))


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
        dispatch.reroute_attempt(reroute_id, attempt=attempt, countdown=wait)
    except Exception as error:
        logger.error("could not schedule attempt %s of reroute %s: %s", attempt, reroute_id, error)
        reroute = Reroute.objects.get(pk=reroute_id)
        if reroute.status != Reroute.Status.RUNNING or reroute.attempts != attempt - 1:
            return  # not this attempt's any more
        try:  # an earlier route call of this reroute may have gone through: read the queue before ending
            _settle(reroute, code="queue_unavailable", sentence=sentences.QUEUE_UNAVAILABLE)
        except Superseded as superseded:
            _note_superseded(reroute, superseded)


# Ending ---------------------------------------------------------------------------------


def _finish_succeeded(reroute: Reroute, *, moved: int | None, **fields) -> None:
    _end(reroute, Reroute.Status.SUCCEEDED, {"messages_moved": moved}, messages_moved=moved, **fields)


def _finish_failed(reroute: Reroute, code: str, sentence: str, *, stats_after: dict | None = None) -> None:
    """End a reroute that could not be done, or, once SparkBot accepted its route call, one whose
    count cannot be confirmed: a routed reroute never ends failed. `stats_after`: the source's queue as
    read at the end, when it was."""
    if reroute.routed_at:
        reason = sentences.count_unconfirmed(reroute.source_alias, sentence,
                                             (reroute.stats_before or {}).get("total"))
        _end(reroute, Reroute.Status.SUCCEEDED, {"messages_moved": None, "unconfirmed": code},
             messages_moved=None, error_code="count_unconfirmed", error_message=reason)
        return
    read_after = {"stats_after": stats_after} if stats_after else {}
    _end(reroute, Reroute.Status.FAILED, {"error": code}, error_code=code, error_message=sentence, **read_after)


def _pauses_source(reroute: Reroute) -> bool:
    return reroute.handover_run_id is not None and reroute.handover_run.pause_sources


def _set_source_queue_back(reroute: Reroute) -> None:
    """A handover that paused the source sets it back to the status it had, whatever the outcome."""
    status = reroute.source_queue_status
    if not status:
        return
    try:
        _call(reroute, sentences.set_back(status),
              lambda: sparkbot.client().queue_set_status(reroute.source_id, status))
    except SparkBotError as error:
        with _fenced(reroute):
            _event(reroute, Kind.CALL, sentences.still_paused(
                reroute.source_label, status, error.sentence(reroute.source_label, reroute.target_label)))


def _end(reroute: Reroute, status: str, detail: dict, **fields) -> None:
    """End the reroute: its last event, then its place in the audit chain, in one fenced transaction."""
    _set_source_queue_back(reroute)
    with _fenced(reroute, late=f"it would have ended the reroute {status}"):
        for name, value in {"status": status, "ended_at": timezone.now(), **fields}.items():
            setattr(reroute, name, value)
        _event(reroute, status, reroute.outcome, detail)  # the event kinds "succeeded" and "failed" are the statuses
        audit.chain_append(reroute)
        _save(reroute, status=status, ended_at=reroute.ended_at, chain_seq=reroute.chain_seq,
              chain_hash=reroute.chain_hash, **fields)
        transaction.on_commit(lambda: dispatch.reroute_has_ended(reroute), robust=True)


@contextmanager
def _fenced(reroute: Reroute, *, late: str = ""):
    """A transaction holding the reroute's row lock, entered only while this attempt still owns it.

    Entering writes the attempt's sign of life (and its SparkBot time so far) with a conditional
    UPDATE: one statement both takes the lock and checks the fence.
    """
    with transaction.atomic():
        if not Reroute.objects.sign_of_life(reroute):
            raise _superseded(reroute, late)
        yield


def _fenced_write(reroute: Reroute, kind: str, message: str, detail: dict, *, late: str, fields=None) -> None:
    """What `with _fenced(reroute): _event(...); _save(reroute, **fields)` writes, in one statement."""
    fields = fields or {}
    held = Q(fence=reroute.fence, status__in=Reroute.ACTIVE)
    values = {"updated_at": timezone.now(), "sparkbot_seconds": reroute.sparkbot_seconds, **fields}
    event = RerouteEvent(reroute=reroute, kind=kind, message=message, detail=detail)
    if bulk.update_then_insert(Reroute, reroute.pk, held, values, event, read_back=False) is None:
        raise _superseded(reroute, late)
    for name, value in fields.items():
        setattr(reroute, name, value)


def _superseded(reroute: Reroute, late: str) -> Superseded:
    ended = Reroute.objects.filter(pk=reroute.pk).exclude(status__in=Reroute.ACTIVE).exists()
    superseded = Superseded(ended=ended or not Reroute.objects.filter(pk=reroute.pk).exists())
    superseded.late = late
    return superseded


def _note_superseded(reroute: Reroute, superseded: Superseded) -> None:
    logger.warning("attempt %s of reroute %s came late (%s)", reroute.attempts, reroute.pk, superseded.late)
    _event(reroute, Kind.SUPERSEDED,
           sentences.superseded(reroute.attempts, ended=superseded.ended, late=superseded.late or "nothing"),
           {"attempt": reroute.attempts, "late": superseded.late})


# Finding lost work ----------------------------------------------------------------------


def reroutes_sweep() -> dict[str, int]:
    """Find lost work: reroutes the task queue never delivered, and reroutes whose attempt went silent.

    Each row is re-checked under its lock, so that sweeps running at once act once.
    """
    now = timezone.now()
    queued_before = now - timedelta(seconds=settings.REROUTE_REQUEUE_AFTER_SECONDS)
    silent_since = now - timedelta(seconds=settings.REROUTE_STUCK_AFTER_SECONDS)
    waiting = Reroute.objects.filter(status=Reroute.Status.QUEUED, updated_at__lt=queued_before)
    stuck = Reroute.objects.filter(status=Reroute.Status.RUNNING, updated_at__lt=silent_since)
    requeued = sum(_requeue_waiting(reroute_id=pk, queued_before=queued_before)
                   for pk in list(waiting.values_list("pk", flat=True)))
    recovered = sum(_recover_silent(reroute_id=pk, silent_since=silent_since)
                    for pk in list(stuck.values_list("pk", flat=True)))
    return {"requeued": requeued, "recovered": recovered}


def _requeue_waiting(*, reroute_id: int, queued_before) -> bool:
    try:
        with transaction.atomic():
            reroute = Reroute.objects.select_for_update().filter(
                pk=reroute_id, status=Reroute.Status.QUEUED, updated_at__lt=queued_before).first()
            if reroute is None:
                return False
            _event(reroute, Kind.RECOVERED, sentences.REQUEUED)
            _save(reroute)  # a sign of life: the next sweep waits again
            dispatch.reroute_attempt(reroute_id, attempt=1)  # inside the transaction: if it fails, nothing is recorded
    except Exception as error:
        logger.warning("task queue still unavailable for reroute %s: %s", reroute_id, type(error).__name__)
        return False
    return True


def _recover_silent(*, reroute_id: int, silent_since) -> bool:
    """Fence out a silent attempt; publish the next one, or settle the reroute if that was the last."""
    silent = settings.REROUTE_STUCK_AFTER_SECONDS
    try:
        with transaction.atomic():
            reroute = Reroute.objects.select_for_update().filter(
                pk=reroute_id, status=Reroute.Status.RUNNING, updated_at__lt=silent_since).first()
            if reroute is None:
                return False
            last = reroute.attempts >= settings.SPARKBOT_MAX_ATTEMPTS
            _save(reroute, fence=reroute.fence + 1)
            if not last:
                _event(reroute, Kind.RECOVERED, sentences.recovered(reroute.attempts, silent))
                # published inside the transaction: if the broker refuses, no false event stays behind
                dispatch.reroute_attempt(reroute_id, attempt=reroute.attempts + 1)
                return True
            _event(reroute, Kind.RECOVERED, sentences.last_attempt_silent(reroute.attempts, silent))
    except Exception as error:
        logger.warning("could not recover reroute %s: %s", reroute_id, type(error).__name__)
        return False
    try:  # outside the sweep's transaction: settling reads the queue, and may set a paused queue back
        _settle(reroute, code="interrupted", sentence=sentences.interrupted(reroute.source_alias,
                                                                            reroute.target_alias))
    except Superseded:
        return False
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
