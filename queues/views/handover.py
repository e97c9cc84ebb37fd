"""Shift handovers: plans (list, copy, delete, run) and a run's live page; the plan editor is in plans.py."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import handovers
from ..models import HandoverPlan, HandoverRun
from .reroute import HTMX_STOP_POLLING, load_devices

can_hand_over = permission_required("queues.run_handover", raise_exception=True)


@require_GET
@can_hand_over
def handover_list(request):
    return _handovers_page(request)


def _handovers_page(request, *, devices_error: str = "", status: int = 200):
    return render(request, "queues/handovers.html", {
        "plans": handovers.plans_listed(), "runs": handovers.runs_recent(), "devices_error": devices_error,
    }, status=status)


@require_POST
@can_hand_over
def plan_copy(request, pk: int):
    copy = handovers.plan_copy(plan=get_object_or_404(HandoverPlan, pk=pk), user=request.user)
    return redirect("queues:handover_plan", pk=copy.pk)


@require_http_methods(["GET", "POST"])
@can_hand_over
def plan_delete(request, pk: int):
    plan = get_object_or_404(HandoverPlan, pk=pk)
    if request.method == "POST":
        handovers.plan_delete(plan=plan)
        return redirect("queues:handovers")
    return render(request, "queues/handover_plan_delete.html", {"plan": plan})


@require_POST
@can_hand_over
def plan_run(request, pk: int):
    plan = get_object_or_404(HandoverPlan, pk=pk)
    device_list, devices_error = load_devices()
    if device_list is None:
        return _handovers_page(request, devices_error=devices_error, status=503)  # the whole list, as before
    try:
        run = handovers.handover_start(plan=plan, user=request.user, device_list=device_list)
    except handovers.RunInProgress as busy:
        messages.warning(request, _run_in_progress_message(plan.name, busy.run))
        return redirect("queues:handover_run", pk=busy.run.pk) if busy.run else redirect("queues:handovers")
    return redirect("queues:handover_run", pk=run.pk)


def _run_in_progress_message(plan_name: str, run: HandoverRun | None) -> str:
    which = f"run #{run.pk}" if run else "another run"
    return f"“{plan_name}” was not started again: {which} of this plan has not finished yet."


@require_GET
@can_hand_over
def run_detail(request, pk: int):
    run = get_object_or_404(HandoverRun, pk=pk)
    items = list(run.items.select_related("reroute"))
    context = {"run": run, "items": items, "progress": handovers.run_progress(run=run, items=items)}
    if request.htmx:
        status = HTMX_STOP_POLLING if run.ended_at else 200
        return render(request, "queues/_handover_run.html", context, status=status)
    return render(request, "queues/handover_run.html", context)


@require_POST
@can_hand_over
def run_retry(request, pk: int):
    run = get_object_or_404(HandoverRun, pk=pk)
    try:
        handovers.handover_retry_failed(run=run)
    except handovers.RunInProgress as busy:
        messages.warning(request, "The failed moves were not retried: "
                         + _run_in_progress_message(run.plan_name, busy.run))
    return redirect("queues:handover_run", pk=pk)


@require_POST
@can_hand_over
def run_cancel(request, pk: int):
    handovers.handover_cancel(run=get_object_or_404(HandoverRun, pk=pk), user=request.user)
    return redirect("queues:handover_run", pk=pk)
