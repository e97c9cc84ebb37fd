"""Shift handovers: the plans, starting a run (202), and a run's progress."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Path, Router, Status

from .. import handovers
from ..models import HandoverPlan, HandoverRun
from .common import absolute, device_list_or_503, number_ref, reroute_url
from .problems import Problem
from .schemas import PlanOut, ProblemOut, RunInProgressProblemOut, RunOut, ValidationProblemOut
from .security import require

router = Router()
ID_MAX = 2**63 - 1
ERRORS = {401: ProblemOut, 403: ProblemOut, 429: ProblemOut}
WHAT = "run shift handovers"


def plan_out(plan: HandoverPlan, unfinished: dict[int, int]) -> dict:
    return {
        "id": plan.pk, "name": plan.name, "schedule": plan.schedule, "next_run_at": plan.next_run_at,
        "pause_sources": plan.pause_sources, "in_order": plan.in_order,
        "pairs": [{"position": p.position, "source_id": p.source_id, "target_id": p.target_id}
                  for p in plan.pairs.all()],
        "unfinished_run": unfinished.get(plan.pk),
    }


@router.get("/handover-plans", url_name="handover_plans", response={200: list[PlanOut], **ERRORS},
            summary="List the handover plans", operation_id="handover_plan_list")
def plan_list(request):
    require(request, "queues.run_handover", WHAT)
    unfinished = dict(HandoverRun.objects.filter(ended_at__isnull=True, plan__isnull=False)
                      .values_list("plan_id", "pk"))
    return [plan_out(plan, unfinished) for plan in HandoverPlan.objects.prefetch_related("pairs")]


@router.post("/handover-plans/{int:plan_id}/runs", url_name="handover_plan_runs",
             response={202: RunOut, 404: ProblemOut, 409: RunInProgressProblemOut, 422: ValidationProblemOut,
                       503: ProblemOut, **ERRORS},
             summary="Run a handover plan now", operation_id="handover_run_start")
def run_start(request, response: HttpResponse, plan_id: int = Path(..., ge=1, le=ID_MAX)):
    """Start a run of the plan (202 with Location); 409 names the run of this plan that has not finished."""
    require(request, "queues.run_handover", WHAT)
    plan = get_object_or_404(HandoverPlan, pk=plan_id)
    device_list = device_list_or_503()
    try:
        run = handovers.handover_start(plan=plan, user=request.user, device_list=device_list)
    except handovers.RunInProgress as busy:
        active = {"id": busy.run.pk, "url": absolute(request, "api:handover_run", busy.run.pk)} if busy.run else None
        which = f"run #{busy.run.pk}" if busy.run else "another run"
        raise Problem(409, "run-in-progress", f"“{plan.name}” was not started again: {which} of this plan has not "
                      "finished yet.", active_run=active)
    response["Location"] = absolute(request, "api:handover_run", run.pk)
    return Status(202, run_out(request, run))


@router.get("/handover-runs/{int:run_id}", url_name="handover_run",
            response={200: RunOut, 404: ProblemOut, 422: ValidationProblemOut, **ERRORS},
            summary="Read a handover run's progress", operation_id="handover_run_read")
def run_read(request, run_id: int = Path(..., ge=1, le=ID_MAX)):
    """Its progress and each move; poll until `result.done`."""
    require(request, "queues.run_handover", WHAT)
    return run_out(request, get_object_or_404(HandoverRun, pk=run_id))


def _item_out(request, item) -> dict:
    reroute = item.reroute
    return {
        "position": item.position, "status": item.status, "waiting_reason": item.waiting_reason,
        "source": number_ref(item.source_id, item.source_alias, item.source_phone),
        "target": number_ref(item.target_id, item.target_alias, item.target_phone),
        "reroute": {"id": reroute.pk, "url": reroute_url(request, reroute.pk), "status": reroute.status,
                    "messages_moved": reroute.messages_moved} if reroute else None,
    }


def run_out(request, run: HandoverRun) -> dict:
    items = list(run.items.select_related("reroute"))
    progress = handovers.run_progress(run=run, items=items)
    done = run.ended_at is not None
    ok = done and run.status == HandoverRun.Status.FINISHED and progress.succeeded == progress.total
    return {
        "id": run.pk, "url": absolute(request, "api:handover_run", run.pk), "plan_id": run.plan_id,
        "plan_name": run.plan_name, "status": run.status, "trigger": run.trigger,
        "started_by": run.started_by_username, "created_at": run.created_at, "ended_at": run.ended_at,
        "progress": {**vars(progress), "percent": progress.percent},
        "items": [_item_out(request, item) for item in items],
        "result": {"ok": ok, "done": done, "state": run.status, "message": run_sentence(run, progress)},
    }


def run_sentence(run: HandoverRun, progress) -> str:
    moved = f"{progress.messages_moved} message{'' if progress.messages_moved == 1 else 's'} moved"
    if run.ended_at is None:
        return f"{progress.done} of {progress.total} moves done ({progress.succeeded} succeeded, " \
               f"{progress.failed} failed); {moved} so far."
    not_run = progress.total - progress.succeeded - progress.failed
    tail = f", {not_run} not run" if not_run else ""
    return f"“{run.plan_name}” {run.get_status_display().lower()}: {progress.succeeded} of {progress.total} " \
           f"moves succeeded, {progress.failed} failed{tail}; {moved}."
