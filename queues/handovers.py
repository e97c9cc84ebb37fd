"""Shift handovers: every write for plans and runs, and the progress of a run.

A run turns each pair of its plan into an item; `handover_advance` starts the items'
reroutes (origin handover) as slots free up, at most HANDOVER_CONCURRENCY at once (one
at a time, in order, for a plan that asks for it). It is called when a run starts, when
one of its reroutes ends, when a reroute of a source it waits for ends, and by the
periodic tick; it may run any number of times.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from . import devices, dispatch, sentences, services
from .devices import DeviceList
from .models import HandoverPair, HandoverPlan, HandoverRun, HandoverRunItem, Number, Reroute
from .sparkbot import USABLE_STATUSES, Device, SparkBotError

logger = logging.getLogger(__name__)
Item = HandoverRunItem.Status
SCHEDULER = "schedule"


class RunInProgress(Exception):
    """The plan already has a run that has not finished; the database allows one at a time."""

    def __init__(self, run: HandoverRun | None):
        super().__init__(f"run {run.pk if run else '?'} of this plan has not finished")
        self.run = run


# Plans ----------------------------------------------------------------------------------


def plan_save(*, plan: HandoverPlan, pairs: list[tuple[str, str]], user) -> HandoverPlan:
    """Save a plan and replace its pairs (source id, target id) in the given order."""
    with transaction.atomic():
        if plan.pk is None:
            plan.created_by = user
        plan.next_run_at = next_run_time(plan=plan, now=timezone.now())
        plan.save()
        plan.pairs.all().delete()
        HandoverPair.objects.bulk_create(
            HandoverPair(plan=plan, position=n, source_id=source, target_id=target)
            for n, (source, target) in enumerate(pairs, start=1)
        )
    return plan


def plan_copy(*, plan: HandoverPlan, user) -> HandoverPlan:
    name = _free_name(f"Copy of {plan.name}")
    copy = HandoverPlan(name=name, pause_sources=plan.pause_sources, in_order=plan.in_order,
                        time_zone=plan.time_zone)  # a copy runs only when told: no schedule
    pairs = list(plan.pairs.values_list("source_id", "target_id"))
    return plan_save(plan=copy, pairs=pairs, user=user)


def _free_name(name: str) -> str:
    candidate, n = name[:100], 2
    while HandoverPlan.objects.filter(name=candidate).exists():
        candidate, n = f"{name[:95]} ({n})", n + 1
    return candidate


def plan_delete(*, plan: HandoverPlan) -> None:
    plan.delete()  # its runs keep their report (plan set to NULL, name copied)


def next_run_time(*, plan: HandoverPlan, now: datetime) -> datetime | None:
    """When the plan's schedule next fires after `now`, or None."""
    if plan.schedule == HandoverPlan.Schedule.ONCE:
        return plan.run_at if plan.run_at and plan.run_at > now else None
    if plan.schedule == HandoverPlan.Schedule.DAILY and plan.daily_time:
        zone = ZoneInfo(plan.time_zone)
        local_now = now.astimezone(zone)
        for days in (0, 1, 2):  # two days ahead covers a skipped local time at a DST change
            day = (local_now + timedelta(days=days)).date()
            candidate = datetime.combine(day, plan.daily_time, tzinfo=zone)
            if candidate > local_now:
                return candidate.astimezone(ZoneInfo("UTC"))
    return None


# Runs -----------------------------------------------------------------------------------


def handover_start(*, plan: HandoverPlan, user, trigger: str = HandoverRun.Trigger.MANUAL,
                   device_list: DeviceList | None = None) -> HandoverRun:
    """Start a run of the plan now: one item per pair, then the first reroutes.

    Raises RunInProgress when a run of the plan has not finished yet.
    """
    device_list = device_list or devices.device_list()  # before the transaction: it may walk SparkBot's list
    try:
        with transaction.atomic():
            run = HandoverRun.objects.create(
                plan=plan, plan_name=plan.name, started_by=user,
                started_by_username=user.get_username() if user else SCHEDULER,
                trigger=trigger, pause_sources=plan.pause_sources, in_order=plan.in_order,
            )
            pairs = list(plan.pairs.all())
            gone = _last_known([i for p in pairs for i in (p.source_id, p.target_id) if not device_list.get(i)])
            HandoverRunItem.objects.bulk_create(_item(run, pair, device_list, gone) for pair in pairs)
            transaction.on_commit(lambda: _advance_soon(run.pk))
    except IntegrityError:
        raise RunInProgress(unfinished_run(plan=plan)) from None
    return run


def unfinished_run(*, plan: HandoverPlan) -> HandoverRun | None:
    return HandoverRun.objects.filter(plan=plan, ended_at__isnull=True).first()


def _last_known(device_ids: list[str]) -> dict[str, Device]:
    """Numbers gone from SparkBot's list, as the fleet monitor last saw them (alias and phone), by id."""
    return {n.device_id: Device(n.device_id, n.alias, n.phone, n.account_status, n.session_status)
            for n in Number.objects.filter(device_id__in=device_ids)} if device_ids else {}


def _item(run: HandoverRun, pair: HandoverPair, device_list, gone: dict[str, Device]) -> HandoverRunItem:
    """The run's item for a pair; skipped when a number has left SparkBot's list (named as last known)."""
    source, target = device_list.get(pair.source_id), device_list.get(pair.target_id)
    known_source = source or gone.get(pair.source_id) or Device(pair.source_id, pair.source_id, "", "", "")
    known_target = target or gone.get(pair.target_id) or Device(pair.target_id, pair.target_id, "", "", "")
    item = HandoverRunItem(run=run, position=pair.position, source_id=pair.source_id, target_id=pair.target_id,
                           source_alias=known_source.alias, source_phone=known_source.phone,
                           target_alias=known_target.alias, target_phone=known_target.phone)
    missing = [known.label for known, found in ((known_source, source), (known_target, target)) if found is None]
    if missing:
        item.status = Item.SKIPPED
        item.waiting_reason = (f"{', '.join(missing)} is no longer a SparkBot device; "
                               "edit the plan and choose another number.")
    return item


def handover_advance(*, run_id: int) -> None:
    """Start as many waiting items as the run's free slots allow; end the run when all are done."""
    with transaction.atomic():
        run = HandoverRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return
        # a worker runs this: the task queue answers again
        run.items.filter(status=Item.WAITING, waiting_reason=sentences.HANDOVER_QUEUE_DOWN).update(waiting_reason="")
        active = run.items.filter(status=Item.STARTED, reroute__status__in=Reroute.ACTIVE).count()
        if run.status == HandoverRun.Status.RUNNING:
            active += _start_waiting(run, slots=(1 if run.in_order else settings.HANDOVER_CONCURRENCY) - active)
        waiting = run.items.filter(status=Item.WAITING).exists()
        if not active and (not waiting or run.status != HandoverRun.Status.RUNNING) and run.ended_at is None:
            if run.status == HandoverRun.Status.RUNNING:
                run.status = HandoverRun.Status.FINISHED
            run.ended_at = timezone.now()
            run.save(update_fields=["status", "ended_at"])
            transaction.on_commit(lambda: dispatch.handover_run_has_ended(run), robust=True)


def _start_waiting(run: HandoverRun, *, slots: int) -> int:
    """Start waiting items in order, skipping those whose source is busy; how many started."""
    started = 0
    if slots <= 0:
        return started
    for item in run.items.filter(status=Item.WAITING).order_by("position").iterator(chunk_size=100):
        if _start_item(run, item):
            started += 1
            if started == slots:
                break
        elif run.in_order:
            break  # the next move may not overtake this one
    return started


def _start_item(run: HandoverRun, item: HandoverRunItem) -> bool:
    source = Device(id=item.source_id, alias=item.source_alias, phone=item.source_phone, status="", session_status="")
    target = Device(id=item.target_id, alias=item.target_alias, phone=item.target_phone, status="", session_status="")
    try:
        reroute = services.reroute_request(
            source=source, target=target, note=sentences.handover_note(run.plan_name), user=run.started_by,
            username=run.started_by_username, origin=Reroute.Origin.HANDOVER, handover_run=run,
            idempotency_key=uuid.uuid5(uuid.NAMESPACE_URL, f"handover-run/{run.pk}/{item.position}/{item.tries}"),
        )
    except services.SourceBusy as busy:
        item.waiting_reason = (f"Waiting for {item.source_alias}: reroute #{busy.active.pk} of this number "
                               "is still in progress.")
        item.save(update_fields=["waiting_reason"])
        return False
    item.status, item.reroute, item.tries, item.waiting_reason = Item.STARTED, reroute, item.tries + 1, ""
    item.save(update_fields=["status", "reroute", "tries", "waiting_reason"])
    return True


def handover_retry_failed(*, run: HandoverRun) -> int:
    """Give every failed move of the run a new reroute; returns how many.

    A failed reroute never reached SparkBot's route call (a routed one ends succeeded), so no
    source is routed twice; the routed_at filter says so again. Raises RunInProgress when
    another run of the plan has not finished.
    """
    try:
        with transaction.atomic():
            run = HandoverRun.objects.select_for_update().get(pk=run.pk)
            failed = run.items.filter(status=Item.STARTED, reroute__status=Reroute.Status.FAILED,
                                      reroute__routed_at__isnull=True)
            count = failed.update(status=Item.WAITING, waiting_reason="Retrying.")
            if count:
                run.status, run.ended_at = HandoverRun.Status.RUNNING, None
                run.save(update_fields=["status", "ended_at"])
                transaction.on_commit(lambda: _advance_soon(run.pk))
    except IntegrityError:
        raise RunInProgress(unfinished_run(plan=run.plan)) from None
    return count


def handover_cancel(*, run: HandoverRun, user) -> int:
    """Cancel the moves not started yet (started ones finish); returns how many."""
    with transaction.atomic():
        run = HandoverRun.objects.select_for_update().get(pk=run.pk)
        count = run.items.filter(status=Item.WAITING).update(
            status=Item.CANCELLED, waiting_reason=f"Cancelled by {user.get_username()}.")
        if run.status == HandoverRun.Status.RUNNING:
            run.status = HandoverRun.Status.CANCELLED
            run.save(update_fields=["status"])
        transaction.on_commit(lambda: _advance_soon(run.pk))
    return count


def handover_runs_waiting_for(*, source_id: str) -> list[int]:
    return list(HandoverRunItem.objects.filter(
        source_id=source_id, status=Item.WAITING, run__status=HandoverRun.Status.RUNNING,
    ).values_list("run_id", flat=True).distinct())


def on_reroute_ended(sender, *, reroute: Reroute, **kwargs) -> None:
    """A reroute ended (dispatch.reroute_ended): move on its handover, and any handover waiting for its source.

    Its own handover moves on here and now, saving a trip through the task queue per move;
    the periodic tick covers this process dying first.
    """
    if reroute.handover_run_id:
        handover_advance(run_id=reroute.handover_run_id)
    for run_id in set(handover_runs_waiting_for(source_id=reroute.source_id)) - {reroute.handover_run_id}:
        _advance_soon(run_id)


def handovers_tick(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic tick: start the plans whose time has come, and nudge running runs.

    A plan that cannot start (SparkBot's device list unavailable, say) is recorded on the plan
    and tried again at the next tick; the other plans and the nudges go on.
    """
    now = now or timezone.now()
    started = failed = 0
    for plan_id in HandoverPlan.objects.filter(next_run_at__lte=now).values_list("pk", flat=True):
        try:
            started += _start_if_due(plan_id=plan_id, now=now)
        except Exception as error:
            failed += 1
            logger.warning("scheduled handover plan %s could not start: %s", plan_id, type(error).__name__)
            _schedule_problem(plan_id=plan_id, error=error)
    running = list(HandoverRun.objects.filter(status=HandoverRun.Status.RUNNING).values_list("pk", flat=True))
    for run_id in running:
        _advance_soon(run_id)
    return {"started": started, "failed": failed, "nudged": len(running)}


def _advance_soon(run_id: int) -> None:
    """Ask a worker to move the run on; if the task queue is down, say so on its waiting moves (the next
    tick nudges it again)."""
    try:
        dispatch.handover_advance(run_id)
    except Exception as error:
        logger.warning("task queue unavailable for handover run %s: %s", run_id, type(error).__name__)
        HandoverRunItem.objects.filter(run_id=run_id, status=Item.WAITING, waiting_reason="").update(
            waiting_reason=sentences.HANDOVER_QUEUE_DOWN)


def _start_if_due(*, plan_id: int, now: datetime) -> int:
    device_list = devices.device_list()  # never inside the transaction: it may walk SparkBot's list
    with transaction.atomic():
        plan = HandoverPlan.objects.select_for_update(skip_locked=True).filter(
            pk=plan_id, next_run_at__lte=now).first()
        if plan is None:
            return 0  # another tick took it
        due_at, plan.schedule_problem = plan.next_run_at, ""
        plan.next_run_at = next_run_time(plan=plan, now=max(now, plan.next_run_at))
        try:
            with transaction.atomic():
                handover_start(plan=plan, user=None, trigger=HandoverRun.Trigger.SCHEDULE, device_list=device_list)
        except RunInProgress as busy:
            plan.schedule_problem = (f"The run due at {_local(due_at, plan)} was skipped: run "
                                     f"#{busy.run.pk if busy.run else '?'} of this plan had not finished.")
        plan.save(update_fields=["next_run_at", "schedule_problem"])
    return 0 if plan.schedule_problem else 1


def _schedule_problem(*, plan_id: int, error: Exception) -> None:
    reason = error.describe() if isinstance(error, SparkBotError) else f"an internal error ({type(error).__name__})."
    plan = HandoverPlan.objects.filter(pk=plan_id).first()
    if plan is None:
        return
    plan.schedule_problem = (f"The run due at {_local(plan.next_run_at, plan)} could not start: {reason} "
                             f"It is tried again every {settings.HANDOVER_TICK_SECONDS:g} s.")[:500]
    plan.save(update_fields=["schedule_problem"])


def _local(moment: datetime | None, plan: HandoverPlan) -> str:
    if moment is None:
        return "—"
    try:
        return f"{moment.astimezone(ZoneInfo(plan.time_zone)):%Y-%m-%d %H:%M} ({plan.time_zone})"
    except (ValueError, KeyError):  # an unknown zone (ZoneInfoNotFoundError is a KeyError)
        return f"{moment:%Y-%m-%d %H:%M} (UTC)"


# Progress -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    succeeded: int
    failed: int
    messages_moved: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


def plans_listed() -> list[HandoverPlan]:
    """Every plan with its pairs, and `cannot_deliver`: the sentence naming its targets that cannot
    deliver now as the fleet monitor last read them ("" when all can, or the monitor has not read them)."""
    plans = list(HandoverPlan.objects.prefetch_related("pairs"))
    targets = {pair.target_id for plan in plans for pair in plan.pairs.all()}
    stuck = {n.device_id: n for n in Number.objects.filter(device_id__in=targets, can_deliver=False)}
    for plan in plans:
        labels = [_stuck_label(stuck[p.target_id]) for p in plan.pairs.all() if p.target_id in stuck]
        plan.cannot_deliver = sentences.targets_cannot_deliver(list(dict.fromkeys(labels))) if labels else ""
    return plans


def _stuck_label(number: Number) -> str:
    why = number.session_status if number.account_status in USABLE_STATUSES else number.account_status
    return f"{number.alias} ({why})"


def runs_recent(*, limit: int = 20):
    """The latest runs, each with `moves`, `failed` (moves whose reroute failed) and `not_run` (cancelled or
    skipped), counted as run_progress counts them: a finished run may still have moves that did not move."""
    return HandoverRun.objects.annotate(
        moves=Count("items"),
        failed=Count("items", filter=Q(items__status=Item.STARTED, items__reroute__status=Reroute.Status.FAILED)),
        not_run=Count("items", filter=Q(items__status__in=[Item.CANCELLED, Item.SKIPPED])),
    )[:limit]


def run_progress(*, run: HandoverRun, items: list[HandoverRunItem]) -> Progress:
    reroutes = [i.reroute for i in items if i.status == Item.STARTED and i.reroute]
    archived = sum(1 for i in items if i.status == Item.STARTED and i.reroute is None)  # see queues/retention.py
    succeeded = sum(1 for r in reroutes if r.status == Reroute.Status.SUCCEEDED)
    failed = sum(1 for r in reroutes if r.status == Reroute.Status.FAILED)
    not_run = sum(1 for i in items if i.status in (Item.CANCELLED, Item.SKIPPED)) + archived
    moved = run.reroutes.aggregate(total=Sum("messages_moved"))["total"] or 0
    return Progress(total=len(items), done=succeeded + failed + not_run, succeeded=succeeded, failed=failed,
                    messages_moved=moved)
