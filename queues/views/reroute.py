"""Rerouting one queue: the route page, its htmx fragments, and a reroute's own page."""

from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from .. import devices, pickers, services
from ..forms import PreviewQuery, RerouteForm
from ..models import Reroute
from ..reroute_preview import reroute_preview
from ..sparkbot import SparkBotError
from .history import story_context

HTMX_STOP_POLLING = 286
# Sent to the page when the reroute its status card follows has ended; what else the page shows of the
# reroute (the list of last reroutes, the reroute page's facts) reloads on it.
REROUTE_ENDED_EVENT = "reroute-ended"
RECENT_REROUTES = 20
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
    data = request.POST if request.method == "POST" else None  # an empty POST is a form, with its errors
    form = RerouteForm(data, devices=device_list, initial=_chosen_in_address(request))
    started, preview, status = None, None, 200
    if request.method == "POST" and form.is_valid():
        if "preview" in request.POST and not request.htmx:  # the no-JavaScript step before Reroute
            preview = reroute_preview(source=form.cleaned_data["source"], target=form.cleaned_data["target"])
        else:
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
    context = {"form": form, "devices": device_list, "choices": pickers.choices(device_list), "started": started,
               "preview": preview, "preview_url": _preview_url(form, device_list) if preview is None else "",
               "recent": _recent_reroutes(request.user)}
    template = "queues/_reroute_panel.html" if request.htmx else "queues/reroute.html"
    return render(request, template, context, status=status)


def _chosen_in_address(request) -> dict:
    """?source=<id>&target=<id> choose the numbers ("Reroute from here" on the numbers' pages)."""
    return {name: request.GET.get(name, "")[:24] for name in ("source", "target") if request.GET.get(name)}


def _preview_url(form: RerouteForm, device_list) -> str:
    """Where the page fetches the preview of numbers already chosen when it opens (htmx)."""
    chosen = {name: form.selected(name) for name in ("source", "target") if device_list.get(form.selected(name))}
    return f"{reverse('queues:reroute_preview')}?{urlencode(chosen)}" if "source" in chosen else ""


@require_GET
@can_reroute
def recent_reroutes(request):
    """The list of the user's last reroutes (htmx fragment of the route page, reloaded when one ends)."""
    return render(request, "queues/_recent_reroutes.html", {"recent": _recent_reroutes(request.user)})


def _recent_reroutes(user) -> list[Reroute]:
    """The user's own last reroutes, newest first (the username index; the user id guards a reused name)."""
    return list(Reroute.objects.filter(requested_by_username=user.get_username(), requested_by=user)
                .defer("api_reply", "search_text", "stats_before").order_by("-id")[:RECENT_REROUTES])


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
    return render(request, "queues/_device_selects.html", {"form": form, "devices": device_list,
                                                           "choices": pickers.choices(device_list), "oob": True})


@require_GET
@can_reroute
def preview(request):
    """The preview of a move, once its numbers are chosen (htmx fragment of the route page)."""
    device_list, devices_error = load_devices()
    if device_list is None:
        return render(request, "queues/_reroute_preview.html", {"error": devices_error})
    query = PreviewQuery(request.GET, devices=device_list)
    if not query.is_valid():
        errors = query.errors.get("source") or query.errors.get("target") or query.non_field_errors()
        return render(request, "queues/_reroute_preview.html", {"error": errors[0]})
    source, target = query.cleaned_data["source"], query.cleaned_data["target"]
    if source is None:
        return render(request, "queues/_reroute_preview.html", {})
    return render(request, "queues/_reroute_preview.html", {"preview": reroute_preview(source=source, target=target)})


@require_GET
def reroute_detail(request, pk: int):
    reroute = get_object_or_404(Reroute, pk=pk)
    if not can_read(request.user, reroute):
        raise PermissionDenied
    if request.htmx and request.htmx.target == "reroute-facts":  # brought up to date once the reroute ended
        return render(request, "queues/_reroute_facts.html", story_context(request, reroute, full_page=True))
    context = story_context(request, reroute, full_page=not request.htmx)
    if not request.htmx:
        return render(request, "queues/reroute_detail.html", context)
    if reroute.is_active:
        return render(request, "queues/_reroute_status.html", context)
    response = render(request, "queues/_reroute_status.html", context, status=HTMX_STOP_POLLING)
    return trigger_client_event(response, REROUTE_ENDED_EVENT)  # the parts of the page that show it follow
