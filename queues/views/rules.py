"""Failover rules: the list with each rule's live state, a rule's page, and its form (managers and admins)."""

from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import rule_pages, rules
from ..forms.rules import RuleForm
from ..models import Number, Rule
from .reroute import load_devices

can_read = permission_required("queues.view_rule", raise_exception=True)
can_change = permission_required("queues.change_rule", raise_exception=True)
can_delete = permission_required("queues.delete_rule", raise_exception=True)
PAGE_SIZE = 50


@require_GET
@can_read
def rule_list(request):
    all_rules = list(Rule.objects.all())
    states = rule_pages.rule_states(of=all_rules, now=timezone.now())
    return render(request, "queues/rules.html", {"rows": [(rule, states[rule.pk]) for rule in all_rules]})


@require_GET
@can_read
def rule_detail(request, pk: int):
    rule = get_object_or_404(Rule, pk=pk)
    decisions = rule_pages.decisions_page(rule=rule, before=_cursor(request, "decisions_before"), size=PAGE_SIZE)
    reroutes = rule_pages.reroutes_page(rule=rule, before=_cursor(request, "reroutes_before"), size=PAGE_SIZE)
    return render(request, "queues/rule.html", {
        "rule": rule, "state": rule_pages.rule_states(of=[rule], now=timezone.now())[rule.pk],
        "decisions": decisions, "reroutes": reroutes, "page_size": PAGE_SIZE, "names": _names(rule),
    })


def _names(rule: Rule) -> dict[str, list[str]]:
    """The rule's numbers as people know them: from SparkBot's device list, else from the monitor's
    last sight of them, else their ids."""
    ids = [*rule.sources, *rule.exceptions, *rule.targets]
    known = dict(Number.objects.filter(device_id__in=ids).values_list("device_id", "alias"))
    device_list, _error = load_devices()
    if device_list is not None:
        known.update({i: device_list.get(i).alias for i in ids if device_list.get(i)})
    return {name: [known.get(i, i) for i in getattr(rule, name)] for name in ("sources", "exceptions", "targets")}


def _cursor(request, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


@require_http_methods(["GET", "POST"])
def rule_edit(request, pk: int | None = None):
    if not request.user.has_perm("queues.change_rule" if pk else "queues.add_rule"):
        raise PermissionDenied
    rule = get_object_or_404(Rule, pk=pk) if pk else Rule()
    device_list, devices_error = load_devices()
    if device_list is None:
        return render(request, "queues/rule_form.html", {"rule": rule, "devices_error": devices_error}, status=503)
    form = RuleForm(request.POST if request.method == "POST" else None, instance=rule, devices=device_list)
    if form.is_bound and form.is_valid():
        saved = rules.rule_save(rule=form.save(commit=False), user=request.user)
        return redirect("queues:rule", pk=saved.pk)
    return render(request, "queues/rule_form.html", {"rule": rule, "form": form})


@require_POST
@can_change
def rule_switch(request, pk: int):
    rule = get_object_or_404(Rule, pk=pk)
    rules.rule_switch(rule=rule, enabled=request.POST.get("enabled") == "true",
                      dry_run=request.POST.get("dry_run", str(rule.dry_run).lower()) == "true")
    if request.POST.get("next") == "list":
        return redirect("queues:rules")
    return redirect("queues:rule", pk=pk)


@require_http_methods(["GET", "POST"])
@can_delete
def rule_delete(request, pk: int):
    rule = get_object_or_404(Rule, pk=pk)
    if request.method == "POST":
        rules.rule_delete(rule=rule)
        return redirect("queues:rules")
    return render(request, "queues/rule_delete.html", {"rule": rule})
