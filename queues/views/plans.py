"""A handover plan's editor: its settings and moves, row operations, bulk filling, and its CSV export."""

import csv
import dataclasses
import io

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect, reselect, reswap, retarget

from .. import handovers, pickers
from ..device_names import name_index
from ..forms.handover import HandoverPlanForm
from ..forms.plan import OPS, ROW_OP, MalformedForm, PlanRows, max_pairs, moves_chosen, moves_from_text, text_from_file
from ..history import FORMULA_STARTS
from ..models import HandoverPlan
from .reroute import load_devices

can_hand_over = permission_required("queues.run_handover", raise_exception=True)
EXPORT_HEADER = ["source", "target", "source_alias", "source_phone", "target_alias", "target_phone"]


@require_http_methods(["GET", "POST"])
@can_hand_over
def plan_edit(request, pk: int | None = None):
    plan = get_object_or_404(HandoverPlan, pk=pk) if pk else HandoverPlan()
    device_list, devices_error = load_devices()
    if device_list is None:
        return render(request, "queues/handover_plan.html", {"plan": plan, "devices_error": devices_error},
                      status=503)
    names = name_index(device_list)
    if request.method == "GET":
        return _editor(request, plan, HandoverPlanForm(instance=plan), PlanRows.of_plan(plan, names=names))
    try:
        op, rows = _op(request.POST), PlanRows.from_post(request.POST, names=names)
        chosen = moves_chosen(request.POST.getlist("bulk_sources"), request.POST.get("bulk_target", ""),
                              names=names) if op == "bulk" else None
    except MalformedForm as error:
        return _bad_request(request, plan, str(error))
    form = HandoverPlanForm(request.POST, instance=plan)
    if op == "save":
        return _save(request, plan, form, rows)
    context = _change(request, op, rows, chosen)
    if request.htmx and (op == "more" or ROW_OP.match(op)):  # only the moves change: htmx swaps them alone
        response = _editor(request, plan, form, rows, fragment=True, **context)
        return reselect(reswap(retarget(response, "#pairs"), "outerHTML"), "#pairs")
    return _editor(request, plan, form, rows, **context)


def _save(request, plan: HandoverPlan, form: HandoverPlanForm, rows: PlanRows):
    rows_valid = rows.validate(in_order=bool(request.POST.get("in_order")))
    if not (form.is_valid() and rows_valid):
        rows.focus = "errors"
        return _editor(request, plan, form, rows)
    count = len(rows.pairs())
    saved = handovers.plan_save(plan=form.save(commit=False), pairs=rows.pairs(), user=request.user)
    messages.success(request, f"Saved “{saved.name}”: {moves(count)}.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("queues:handovers"))
    return redirect("queues:handovers")


def _change(request, op: str, rows: PlanRows, chosen) -> dict:
    """A change of the rows that saves nothing: a row operation, or moves added in bulk."""
    if op == "paste":
        return _fill(rows, moves_from_text(request.POST.get("paste", ""), names=rows.names), field="paste")
    if op == "import":
        text, problem = text_from_file(request.FILES.get("plan_file"))
        result = None if problem else moves_from_text(text, names=rows.names)
        return _fill(rows, result, field="import", replace=True, problem=problem)
    if op == "bulk":
        return _fill(rows, chosen, field="bulk")
    return {"notice": rows.apply(op)}


def _op(data) -> str:
    op = data.get("op") or "save"
    if op not in OPS and not ROW_OP.match(op):
        raise MalformedForm(f"The plan's form asked for an action this page does not have (“{op[:40]}”). "
                            "Open the plan again.")
    return op


def _fill(rows: PlanRows, result, *, field: str, replace: bool = False, problem: str = "") -> dict:
    """Add (or, from a file, put in place of the moves) what a bulk action read, if all of it is good."""
    errors = [problem] if problem else result.errors
    trial = PlanRows([dataclasses.replace(row) for row in rows.rows], names=rows.names)
    if not errors and not replace:
        added, changed = trial.merge(result.moves)
        if len(trial.rows) > max_pairs():
            errors = [f"The plan would hold {len(trial.rows)} moves; a plan holds at most {max_pairs()}."]
    if errors:
        rows.compact()
        rows.focus = f"{field}-errors"
        return {"bulk_errors": {field: errors}}
    rows.focus = "notice"
    if replace:
        rows.replace(result.moves)
        count = len(result.moves)
        return {"notice": f"The file's {moves(count)} {'is' if count == 1 else 'are'} in the plan now, in place of "
                          "the earlier ones. Press “Save plan” to keep them."}
    rows.rows = trial.rows
    changed_words = f" and gave {changed} a new target" if changed else ""
    return {"notice": f"Added {moves(added)}{changed_words}. Press “Save plan” to keep them.", "clear": field}


def moves(count: int) -> str:
    return f"{count} move" if count == 1 else f"{count} moves"


def _editor(request, plan, form, rows: PlanRows, *, notice: str = "", bulk_errors: dict | None = None,
            clear: str = "", fragment: bool = False):
    choices = pickers.choices(rows.names.devices)
    bulk_errors = bulk_errors or {}
    chosen = set(request.POST.getlist("bulk_sources")) if "bulk" in bulk_errors else set()
    context = {
        "plan": plan, "form": form, "rows": rows, "shown": rows.display(), "choices": choices,
        "notice": notice, "bulk_errors": bulk_errors, "max_pairs": max_pairs(),
        "paste_text": "" if clear == "paste" else request.POST.get("paste", ""),
        "bulk_target": "" if clear == "bulk" else request.POST.get("bulk_target", ""),
        "bulk_options": pickers.with_selected_many(choices.multiple_options_html, chosen),
    }
    return render(request, "queues/_plan_pairs.html" if fragment else "queues/handover_plan.html", context)


def _bad_request(request, plan: HandoverPlan, message: str):
    template = "queues/_bad_request.html" if request.htmx else "queues/bad_request.html"
    return render(request, template, {"message": message, "plan": plan}, status=400)


@require_GET
@can_hand_over
def plan_export_csv(request, pk: int):
    """The plan's moves as CSV: ids first (what an import reads back), then aliases and phones as they are now."""
    plan = get_object_or_404(HandoverPlan, pk=pk)
    device_list, _error = load_devices()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_HEADER)
    for pair in plan.pairs.all():
        row = [pair.source_id, pair.target_id]
        for device_id in (pair.source_id, pair.target_id):
            device = device_list.get(device_id) if device_list else None
            row += [_cell(device.alias), _cell(device.phone)] if device else ["", ""]
        writer.writerow(row)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="plan-{slugify(plan.name) or plan.pk}.csv"'
    return response


def _cell(value: str) -> str:
    return "'" + value if value and value[0] in FORMULA_STARTS else value
