"""Rerouting one queue: the route page, its htmx fragments, and a reroute's own page."""

from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import devices, services
from ..forms import QueueStatsQuery, RerouteForm
from ..models import Reroute
from ..sparkbot import SparkBotError
from .history import story_context

HTMX_STOP_POLLING = 286
can_reroute = permission_required("queues.add_reroute", raise_exception=True)


def can_read(user, reroute: Reroute) -> bool:
    """A lead reads the reroutes they asked for; managers and admins read them all."""
    return reroute.requested_by_id == user.pk or user.has_perm("queues.view_all_reroutes")


def load_devices(*, refresh: bool = False):
    """(device list, None) or (None, the sentence saying why SparkBot's list is missing)."""
    try:
        return devices.device_list(refresh=refresh), None
    except devices.DeviceListLoading as loading:
        return None, loading.describe()
    except SparkBotError as error:
        return None, f"The device list could not be loaded from SparkBot. {error.describe()}"


@require_http_methods(["GET", "POST"])
@can_reroute
def reroute(request):
    device_list, devices_error = load_devices()
    if device_list is None:
        return render(request, "queues/reroute.html", {"devices_error": devices_error}, status=503)
    form = RerouteForm(request.POST or None, devices=device_list)
    started, status = None, 200
    if request.method == "POST" and form.is_valid():
        try:
            started = _request_reroute(request, form)
        except services.SourceBusy as busy:
            form.add_error("source", _busy_message(busy.active))
        except services.KeyReused as reused:
            form.add_error(None, reused.message)
            status = 409
        else:
            if not request.htmx:
                return redirect("queues:reroute_detail", pk=started.pk)
            form = RerouteForm(devices=device_list)
    context = {"form": form, "devices": device_list, "started": started}
    template = "queues/_reroute_panel.html" if request.htmx else "queues/reroute.html"
    return render(request, template, context, status=status)


def _request_reroute(request, form: RerouteForm) -> Reroute:
    data = form.cleaned_data
    return services.reroute_request(
        source=data["source"], target=data["target"], note=data["note"], user=request.user,
        origin=Reroute.Origin.WEB, idempotency_key=data["idempotency_key"],
    )


def _busy_message(active: Reroute) -> str:
    return format_html(
        '{} is already being rerouted: <a href="{}">reroute #{}</a> is {}. Wait for it to end.',
        active.source_alias, reverse("queues:reroute_detail", args=[active.pk]), active.pk,
        active.get_status_display().lower(),
    )


@require_POST
@can_reroute
def devices_refresh(request):
    device_list, devices_error = load_devices(refresh=True)
    if not request.htmx:
        return redirect("queues:reroute")
    if device_list is None:
        return render(request, "queues/_devices_error.html", {"devices_error": devices_error})
    form = RerouteForm(request.POST, devices=device_list)
    return render(request, "queues/_device_selects.html", {"form": form, "devices": device_list})


@require_GET
@can_reroute
def queue_stats(request):
    device_list, devices_error = load_devices()
    if device_list is None:
        return render(request, "queues/_queue_stats.html", {"error": devices_error})
    query = QueueStatsQuery(request.GET, devices=device_list)
    if not query.is_valid():
        return render(request, "queues/_queue_stats.html", {"error": query.errors["source"][0]})
    source = query.cleaned_data["source"]
    try:
        stats = devices.queue_stats(device_id=source.id)
    except SparkBotError as error:
        return render(request, "queues/_queue_stats.html", {"device": source, "error": error.describe()})
    return render(request, "queues/_queue_stats.html", {"device": source, "stats": stats})


@require_GET
def reroute_detail(request, pk: int):
    reroute = get_object_or_404(Reroute, pk=pk)
    if not can_read(request.user, reroute):
        raise PermissionDenied
    context = story_context(request, reroute, full_page=not request.htmx)
    if request.htmx:
        status = 200 if reroute.is_active else HTMX_STOP_POLLING
        return render(request, "queues/_reroute_status.html", context, status=status)
    return render(request, "queues/reroute_detail.html", context)
