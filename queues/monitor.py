"""The fleet monitor: the state and the backlog of every number, read within a call budget.

One cycle runs at a time across every process and machine (a lease on the MonitorState row).
A cycle:
1. does nothing while the monitor is paused (SparkBot rate limiting, refusing the key, or down);
2. walks GET /devices every MONITOR_DEVICES_SECONDS and records each number's state, "since when";
3. reads the queues of as many numbers as the budget allows (MONITOR_CALLS_PER_MINUTE over any
   minute, walks included), most urgent first: numbers that cannot deliver and hold messages,
   then numbers that held messages at their last reading, then the oldest readings.
SparkBot is never called inside a transaction: each answer is written in its own short one.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone

from . import devices, dispatch, sparkbot
from .models import MonitorState, Number, NumberSnapshot
from .sparkbot import Device, QueueStats, SparkBotError

logger = logging.getLogger(__name__)
SLOT_SECONDS = 1800  # one sparkline point per half hour
DAY_SLOTS = 48
STATE_FIELDS = ("account_status", "session_status")
QUEUE_FIELDS = ("queue_status", "queue_total", "queue_pending", "queue_processing", "queue_scheduled")


@dataclass
class CycleReport:
    ran: bool
    walked: bool = False
    readings: int = 0
    calls: int = 0
    changed: int = 0
    paused: str = ""
    notes: list[str] = field(default_factory=list)


class Paused(Exception):
    """SparkBot asked the whole monitor to stop for a while (429), refused the key, or is down."""


# The cycle ------------------------------------------------------------------------------


def monitor_cycle(*, now: datetime | None = None) -> CycleReport:
    """One cycle of the monitor, unless another process runs one now."""
    token = uuid.uuid4().hex
    if not _take_lease(token):
        return CycleReport(ran=False, notes=["another cycle is running"])
    logger.info("monitor cycle %s started", token[:8])
    calls: list[float] = []
    try:
        report = _cycle(calls, now or timezone.now())
    finally:
        _end_cycle(token, calls)
    report.calls = len(calls)
    if report.ran:
        dispatch.monitor_cycle_has_ended()
    return report


def _cycle(calls: list[float], now: datetime) -> CycleReport:
    state = monitor_state()
    report = CycleReport(ran=True)
    if state.paused_until and state.paused_until > now:
        report.paused = state.pause_reason
        return report
    try:
        if _walk_due(state, now):
            report.changed += _walk(calls, started=now)
            report.walked = True
        for number in _most_urgent(limit=_reads_allowed(state, calls)):
            report.changed += _read(number, calls)
            report.readings += 1
    except Paused as paused:
        report.paused = str(paused)
        return report
    _recover()
    return report


def monitor_nudge(*, device_id: str | None = None) -> CycleReport:
    """SparkBot said something changed (its webhook): read that number's state and queue now, or the
    device list when no known number was named; within the budget, and not while paused."""
    state, now = monitor_state(), timezone.now()
    report = CycleReport(ran=True)
    if state.paused_until and state.paused_until > now:
        report.paused = state.pause_reason
        return report
    number = Number.objects.filter(device_id=device_id).first() if device_id else None
    calls: list[float] = []
    try:
        if _calls_left(state, calls) < 2:
            report.notes.append("no calls left in this minute's budget")
        elif number is None:
            report.changed, report.walked = _walk(calls, started=now), True
        else:
            report.changed = _read_device(number, calls) + _read(number, calls)
            report.readings = 1
    except Paused as paused:
        report.paused = str(paused)
    finally:
        _keep_calls(calls)
    report.calls = len(calls)
    return report


def _read_device(number: Number, calls: list[float]) -> int:
    calls.append(time.time())
    try:
        device = sparkbot.client().device(number.device_id)
    except sparkbot.DeviceNotFound:
        Number.objects.filter(pk=number.pk).update(listed=False)
        return 1
    except (sparkbot.RateLimited, sparkbot.AuthenticationFailed, sparkbot.Unavailable) as error:
        raise _paused(error) from error
    with transaction.atomic():
        changed = _record_device(number, device, timezone.now())
        if changed:
            _bump_version()
    number.refresh_from_db()
    return changed


def _walk_due(state: MonitorState, now: datetime) -> bool:
    """Due on the cycle that falls on the interval: within half a cycle of it, as beat's ticks wander
    by a few milliseconds (else every interval would wait for one cycle more)."""
    interval = timedelta(seconds=settings.MONITOR_DEVICES_SECONDS - settings.MONITOR_CYCLE_SECONDS / 2)
    due = state.devices_read_at is None or state.devices_read_at <= now - interval
    return due and _calls_left(state, []) > 0


def _walk(calls: list[float], *, started: datetime) -> int:
    """Walk the device list and record it; the next walk is due MONITOR_DEVICES_SECONDS after `started`."""
    try:
        listed = devices.device_list_refresh()
    except SparkBotError as error:
        calls.append(time.time())
        raise _paused(error) from error
    calls.extend([time.time()] * (len(listed.devices) // sparkbot.PAGE_SIZE + 1))
    changed = record_device_list(listed.devices, now=timezone.now())
    MonitorState.objects.filter(pk=MonitorState.SINGLETON).update(devices_read_at=started)
    return changed


def _reads_allowed(state: MonitorState, calls: list[float]) -> int:
    """This cycle's share of the budget, never more than what the last minute left."""
    share = math.ceil(settings.MONITOR_CALLS_PER_MINUTE * settings.MONITOR_CYCLE_SECONDS / 60)
    return max(0, min(share, _calls_left(state, calls)))


def _calls_left(state: MonitorState, calls: list[float]) -> int:
    minute_ago = time.time() - 60
    made = sum(1 for at in [*state.calls, *calls] if at > minute_ago)
    return settings.MONITOR_CALLS_PER_MINUTE - made


def _most_urgent(*, limit: int) -> list[Number]:
    if limit <= 0:
        return []
    urgency = Case(
        When(Q(can_deliver=False, queue_total__gt=0), then=Value(0)),
        When(queue_total__gt=0, then=Value(1)),
        default=Value(2), output_field=IntegerField(),
    )
    numbers = Number.objects.filter(listed=True).annotate(urgency=urgency)
    return list(numbers.order_by("urgency", F("read_at").asc(nulls_first=True), "pk")[:limit])


def _read(number: Number, calls: list[float]) -> int:
    calls.append(time.time())
    try:
        stats, _reply = sparkbot.client().queue_stats(number.device_id)
    except (sparkbot.RateLimited, sparkbot.AuthenticationFailed, sparkbot.Unavailable) as error:
        raise _paused(error) from error
    except SparkBotError as error:  # this number's own problem: say so on its row, go on with the others
        Number.objects.filter(pk=number.pk).update(read_at=timezone.now(), read_problem=error.describe()[:300])
        return 0
    return record_queue(number, stats, now=timezone.now())


# Recording what SparkBot said ------------------------------------------------------------


def record_device_list(listed: tuple[Device, ...] | list[Device], *, now: datetime) -> int:
    """Record the states of every listed number (new ones too) and which numbers left the list."""
    fields = ("id", "device_id", "alias", "phone", "listed", "can_deliver", *STATE_FIELDS, *QUEUE_FIELDS)
    # 1,000 rows compared field by field: plain values, not model instances (a third of a cycle's CPU)
    known = {row["device_id"]: SimpleNamespace(pk=row["id"], **row) for row in Number.objects.values(*fields)}
    listed_ids = {device.id for device in listed}
    changed = 0
    with transaction.atomic():
        for device in listed:
            changed += _record_device(known.get(device.id), device, now)
        Number.objects.filter(device_id__in=listed_ids).update(listed_at=now)
        gone = [n.pk for n in known.values() if n.listed and n.device_id not in listed_ids]
        if gone:
            Number.objects.filter(pk__in=gone).update(listed=False)
            changed += len(gone)
        if changed:
            _bump_version()
    return changed


def _record_device(number: Number | SimpleNamespace | None, device: Device, now: datetime) -> int:
    """1 if the number is new or changed (a new state gets a snapshot and a new "since"), else 0."""
    state = {"account_status": device.status, "session_status": device.session_status}
    if number is None:
        number = Number.objects.create(device_id=device.id, alias=device.alias, phone=device.phone,
                                       can_deliver=device.can_deliver, state_since=now, listed_at=now,
                                       undeliverable_since=None if device.can_deliver else now, **state)
        _snapshot(number, now)
        return 1
    new_state = any(getattr(number, name) != value for name, value in state.items())
    if not new_state and (number.alias, number.phone, number.listed) == (device.alias, device.phone, True):
        return 0
    fields = {"alias": device.alias, "phone": device.phone, "listed": True, "can_deliver": device.can_deliver,
              **state}
    if new_state:
        fields["state_since"] = now
    if device.can_deliver != number.can_deliver:  # a break in "cannot deliver" restarts its clock
        fields["undeliverable_since"] = None if device.can_deliver else now
    Number.objects.filter(pk=number.pk).update(**fields)
    if new_state:
        for name, value in fields.items():
            setattr(number, name, value)
        _snapshot(number, now)
    return 1


def record_queue(number: Number, stats: QueueStats, *, now: datetime) -> int:
    """Record a queue reading: always its time, a snapshot when something changed or the heartbeat is due."""
    queue = {"queue_status": stats.status or "", "queue_total": stats.total, "queue_pending": stats.pending,
             "queue_processing": stats.processing, "queue_scheduled": stats.scheduled}
    changed = any(getattr(number, name) != value for name, value in queue.items())
    heartbeat = number.snapshot_at is None or number.snapshot_at <= now - timedelta(
        minutes=settings.MONITOR_HEARTBEAT_MINUTES)
    for name, value in queue.items():
        setattr(number, name, value)
    number.read_at, number.read_problem = now, ""
    number.depth_24h = depth_with(number.depth_24h, stats.total, now)
    with transaction.atomic():
        if changed or heartbeat:
            _snapshot(number, now)
        number.save(update_fields=[*queue, "read_at", "read_problem", "depth_24h", "snapshot_at"])
        if changed:
            _bump_version()
    return int(changed)


def depth_with(points: list, total: int | None, now: datetime) -> list:
    """The day's sparkline points ([half-hour slot, highest depth]) with this reading counted in."""
    if total is None:
        return points
    slot = int(now.timestamp()) // SLOT_SECONDS
    kept = [[s, depth] for s, depth in points if s > slot - DAY_SLOTS]
    if kept and kept[-1][0] == slot:
        kept[-1][1] = max(kept[-1][1], total)
    else:
        kept.append([slot, total])
    return kept


def depth_by_slot_start(points: list) -> list[tuple[datetime, int]]:
    """The day's sparkline points as (the half hour's start, highest depth)."""
    return [(datetime.fromtimestamp(slot * SLOT_SECONDS, tz=UTC), depth) for slot, depth in points]


def _snapshot(number: Number | SimpleNamespace, now: datetime) -> None:
    NumberSnapshot.objects.create(number_id=number.pk, at=now, **{name: getattr(number, name) for name in STATE_FIELDS},
                                  **{name: getattr(number, name) for name in QUEUE_FIELDS})
    number.snapshot_at = now
    Number.objects.filter(pk=number.pk).update(snapshot_at=now)


def _bump_version() -> None:
    MonitorState.objects.filter(pk=MonitorState.SINGLETON).update(version=F("version") + 1)


# Backing off ----------------------------------------------------------------------------


def _paused(error: SparkBotError) -> Paused:
    """Pause the whole monitor: as long as Retry-After says on 429, longer and longer while SparkBot is down."""
    state = monitor_state()
    failures = state.failures + 1
    if isinstance(error, sparkbot.RateLimited):
        wait = error.retry_after if error.retry_after is not None else settings.MONITOR_BACKOFF_MAX_SECONDS / 5
    else:
        wait = settings.MONITOR_CYCLE_SECONDS * 2 ** (failures - 1)
    wait = min(wait, settings.MONITOR_BACKOFF_MAX_SECONDS)
    until = timezone.now() + timedelta(seconds=wait)
    reason = f"{error.describe()} The monitor waits until {timezone.localtime(until):%H:%M:%S}."
    MonitorState.objects.filter(pk=MonitorState.SINGLETON).update(
        paused_until=until, pause_reason=reason[:300], failures=failures)
    logger.warning("fleet monitor paused for %.0f s: %s", wait, error.code)
    return Paused(reason)


def _recover() -> None:
    MonitorState.objects.filter(pk=MonitorState.SINGLETON).exclude(failures=0, pause_reason="").update(
        failures=0, pause_reason="", paused_until=None)


# One cycle at a time --------------------------------------------------------------------


def monitor_state() -> MonitorState:
    state, _created = MonitorState.objects.get_or_create(pk=MonitorState.SINGLETON)
    return state


def _lease_seconds() -> float:
    """Long enough for a whole cycle even when every call waits its full timeout."""
    known = Number.objects.count()
    calls = math.ceil(settings.MONITOR_CALLS_PER_MINUTE * settings.MONITOR_CYCLE_SECONDS / 60)
    return (calls + known // sparkbot.PAGE_SIZE + 1) * settings.SPARKBOT_TIMEOUT + 10


def _take_lease(token: str) -> bool:
    monitor_state()
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    taken = MonitorState.objects.filter(free, pk=MonitorState.SINGLETON).update(
        lease_owner=token, lease_until=now + timedelta(seconds=_lease_seconds()), cycle_started_at=now)
    return bool(taken)


def _end_cycle(token: str, calls: list[float]) -> None:
    """Give the lease back and keep the last minute's calls, whatever happened in the cycle."""
    _keep_calls(calls)
    MonitorState.objects.filter(pk=MonitorState.SINGLETON, lease_owner=token).update(
        lease_owner="", lease_until=None, cycle_ended_at=timezone.now())
    logger.info("monitor cycle %s ended, %s calls", token[:8], len(calls))


def _keep_calls(calls: list[float]) -> None:
    """Add these calls to the last minute's log (shared by cycles and nudges)."""
    with transaction.atomic():
        state = MonitorState.objects.select_for_update().get(pk=MonitorState.SINGLETON)
        minute_ago = time.time() - 60
        state.calls = [at for at in [*state.calls, *calls] if at > minute_ago]
        state.save(update_fields=["calls"])


# Keeping readings -----------------------------------------------------------------------


def snapshots_prune(*, now: datetime | None = None, batch: int = 5000) -> dict[str, int]:
    """Remove snapshots older than MONITOR_RETENTION_DAYS; thin those older than a week to one an hour
    per number (the first of each hour, and every change of state, stay)."""
    now = now or timezone.now()
    old = NumberSnapshot.objects.filter(at__lt=now - timedelta(days=settings.MONITOR_RETENTION_DAYS))
    removed = _delete_in_batches(old, batch)
    thinned = _thin(since=now - timedelta(days=settings.MONITOR_RETENTION_DAYS), until=now - timedelta(days=7),
                    batch=batch)
    return {"removed": removed, "thinned": thinned}


def _delete_in_batches(queryset, batch: int) -> int:
    deleted = 0
    while ids := list(queryset.values_list("pk", flat=True)[:batch]):
        deleted += NumberSnapshot.objects.filter(pk__in=ids).delete()[0]
    return deleted


def _thin(*, since: datetime, until: datetime, batch: int) -> int:
    thinned = 0
    for number_id in Number.objects.values_list("pk", flat=True).iterator():
        rows = NumberSnapshot.objects.filter(number_id=number_id, at__gte=since, at__lt=until).order_by("at")
        surplus, last_hour, last_state = [], None, None
        for pk, at, account, session in rows.values_list("pk", "at", "account_status", "session_status"):
            hour, state = at.replace(minute=0, second=0, microsecond=0), (account, session)
            if hour == last_hour and state == last_state:
                surplus.append(pk)
            last_hour, last_state = hour, state
        for start in range(0, len(surplus), batch):
            thinned += NumberSnapshot.objects.filter(pk__in=surplus[start:start + batch]).delete()[0]
    return thinned
