"""Every number at a glance: the live overview of the fleet, and one number's page.

Both read only what the fleet monitor recorded (queues/fleet.py): no page waits for SparkBot.
"""

from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from .. import charts, fleet, history
from ..forms.fleet import FleetFilterForm, NumberReroutesCursor
from ..models import Number, Reroute

# Every role may reroute, and so every role sees the fleet it reroutes from.
can_view_numbers = permission_required("queues.add_reroute", raise_exception=True)
FILTERS_FORM_ID = "numbers-filters"
NO_SCRIPT_RELOAD_SECONDS = 30  # without JavaScript the whole page reloads: not as often as htmx polls


@require_GET
@can_view_numbers
def numbers_overview(request):
    form = FleetFilterForm(request.GET)
    now = timezone.now()
    page = None
    if form.is_valid():
        page = fleet.fleet_page(filters=form.filters(), page=form.page_number, size=fleet.PAGE_SIZE, now=now)
    base, poll = reverse("queues:numbers"), fleet.poll_seconds()
    context = {
        "form": form, "page": page, "now": now, "base_url": base,
        "here": base + (form.query(page=form.page_number) if page else ""),
        "previous_url": base + form.query(page=page.previous) if page and page.previous else "",
        "next_url": base + form.query(page=page.next) if page and page.next else "",
        "summary": fleet.fleet_summary(), "monitor": fleet.monitor_health(now=now),
        "poll_seconds": poll, "reload_seconds": max(poll, NO_SCRIPT_RELOAD_SECONDS),
        "legend": charts.marker_legend(), "reroute_url": reverse("queues:reroute"),
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "queues/_numbers_live.html", context)
        if request.htmx.trigger == FILTERS_FORM_ID:  # the filters changed: the address follows (polls leave it)
            push_url(response, context["here"])
        return response
    return render(request, "queues/numbers.html", context)


@require_GET
@can_view_numbers
def number_detail(request, device_id: str):
    number = get_object_or_404(Number, device_id=device_id)
    now = timezone.now()
    context = {"number": number, "now": now, "monitor": fleet.monitor_health(now=now),
               "poll_seconds": fleet.poll_seconds(),
               "state_since": fleet.since_words(number.state_since, now),
               "read_age": fleet.ago(number.read_at, now) if number.read_at else "",
               "listed_age": fleet.ago(number.listed_at, now)}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "queues/_number_now.html", context)
    cursor = NumberReroutesCursor(request.GET)
    position = cursor.cursor()
    reroutes = history.history_page(filters=history.HistoryFilters(device=number.device_id),
                                    size=fleet.REROUTES_PAGE_SIZE, **position)
    here = reverse("queues:number", args=[number.device_id])
    context.update({
        "week": fleet.number_week(number=number, now=now), "legend": charts.marker_legend(),
        "reroutes": reroutes, "cursor_error": cursor.errors and NumberReroutesCursor.CURSOR_ERROR,
        "readable": _readable(request.user, reroutes.rows),
        "here": here + NumberReroutesCursor.query(**position),
        "newest_url": here if not reroutes.is_newest else "",
        "newer_url": here + NumberReroutesCursor.query(after=reroutes.newer) if reroutes.newer else "",
        "older_url": here + NumberReroutesCursor.query(before=reroutes.older) if reroutes.older else "",
        "history_url": f"{reverse('queues:history')}?{urlencode({'device': number.device_id})}",
    })
    return render(request, "queues/number_detail.html", context)


def _readable(user, rows: list[Reroute]) -> set[int]:
    """The ids of the listed reroutes this user may open (views.reroute.can_read, for a page in one query):
    a lead the ones they asked for, managers and admins all."""
    ids = [row.pk for row in rows]
    if user.has_perm("queues.view_all_reroutes"):
        return set(ids)
    return set(Reroute.objects.filter(pk__in=ids, requested_by=user).values_list("pk", flat=True))
