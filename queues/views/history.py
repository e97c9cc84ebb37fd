"""The reroute history: the filtered list (a page, or its results fragment for htmx), its exports,
and the story a reroute's own page tells."""

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from .. import history
from ..forms import HistoryFilterForm
from ..models import HandoverRun, Reroute, Rule

can_view_all = permission_required("queues.view_all_reroutes", raise_exception=True)
can_export = permission_required("queues.export_reroutes", raise_exception=True)
USER_SUGGESTIONS = 500
EXPORTS = {
    "csv": (history.export_csv, "text/csv; charset=utf-8"),
    "jsonl": (history.export_jsonl, "application/x-ndjson; charset=utf-8"),
}


@require_GET
@can_view_all
def history_list(request):
    form = HistoryFilterForm(request.GET)
    page = None
    if form.is_valid():
        page = history.history_page(filters=form.filters(), before=form.cleaned_data["before"],
                                    after=form.cleaned_data["after"])
    context = _list_context(request, form, page)
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "queues/_history_results.html", {**context, "fragment": True})
        return push_url(response, context["here"])
    return render(request, "queues/history.html", {**context, "usernames": _usernames()})


def _list_context(request, form: HistoryFilterForm, page: history.HistoryPage | None) -> dict:
    base = reverse("queues:history")
    context = {"form": form, "page": page, "base_url": base, "here": base + _raw_query(request)}
    if page is None:
        return {**context, "newest_url": base + _raw_query(request, without=("before", "after"))}
    handover = form.cleaned_data["handover"]
    return {
        **context,
        "here": base + form.query(**page.cursor),
        "newest_url": base + form.query(),
        "newer_url": base + form.query(after=page.newer) if page.newer else "",
        "older_url": base + form.query(before=page.older) if page.older else "",
        "export_csv_url": reverse("queues:history_export_csv") + form.query(),
        "export_jsonl_url": reverse("queues:history_export_jsonl") + form.query(),
        "handover_run": HandoverRun.objects.filter(pk=handover).first() if handover else None,
        "rule": Rule.objects.filter(pk=form.cleaned_data["rule"]).first() if form.cleaned_data["rule"] else None,
    }


def _raw_query(request, *, without: tuple[str, ...] = ()) -> str:
    """The query as typed (an invalid one stays in the URL, to be fixed or shared as it is)."""
    params = [(name, value) for name, value in request.GET.items() if value.strip() and name not in without]
    return f"?{urlencode(params)}" if params else ""


def _usernames() -> list[str]:
    users = get_user_model().objects.order_by("username").values_list("username", flat=True)
    return list(users[:USER_SUGGESTIONS])


@require_GET
@can_export
def history_export_csv(request):
    return _export(request, "csv")


@require_GET
@can_export
def history_export_jsonl(request):
    return _export(request, "jsonl")


def _export(request, kind: str):
    """Exactly the filtered set (the page position is ignored), streamed as it is read."""
    params = request.GET.copy()
    for name in ("before", "after"):
        params.pop(name, None)
    form = HistoryFilterForm(params)
    if not form.is_valid():
        errors = "\n".join(f"{label}: {message}" for label, message in form.visible_errors)
        return HttpResponse(f"The filters are not valid; nothing was exported.\n{errors}\n", status=400,
                            content_type="text/plain; charset=utf-8")
    rows, content_type = EXPORTS[kind]
    response = StreamingHttpResponse(rows(filters=form.filters()), content_type=content_type)
    filename = f"reroutes-{timezone.localtime():%Y%m%d-%H%M%S}.{kind}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # a proxy passes the rows on as they come
    return response


def story_context(request, reroute: Reroute, *, full_page: bool) -> dict:
    """What a reroute's page and its live fragment show: the whole story, and for readers of
    every reroute, links to the other reroutes of its devices and to its handover."""
    story = history.reroute_story(reroute=reroute)
    context = {"reroute": reroute, "events": story.events, "story": story}
    if full_page and request.user.has_perm("queues.view_all_reroutes"):
        base = reverse("queues:history")
        context["history_links"] = {
            "source": f"{base}?{urlencode({'device': reroute.source_id})}",
            "target": f"{base}?{urlencode({'device': reroute.target_id})}",
            "handover": f"{base}?{urlencode({'handover': reroute.handover_run_id})}" if reroute.handover_run_id
            else "",
        }
        context["related"] = history.reroutes_of_devices(device_ids=[reroute.source_id, reroute.target_id],
                                                         exclude=reroute.pk)
    return context
