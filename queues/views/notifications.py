"""Notifications (admins): webhook endpoints, who gets emails, and the delivery log with “send again”."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import notify
from ..forms.notifications import EVENTS_HELP, DeliveryFilterForm, EmailSubscriptionForm, WebhookEndpointForm
from ..models import Delivery, EmailSubscription, WebhookEndpoint

can_manage = permission_required("queues.manage_notifications", raise_exception=True)
LOG_PAGE = 100


@require_GET
@can_manage
def notification_list(request):
    return render(request, "queues/notifications.html", {
        "endpoints": WebhookEndpoint.objects.all(),
        "emails": EmailSubscription.objects.select_related("user"),
        "recent": Delivery.objects.all()[:10],
    })


@never_cache
@require_http_methods(["GET", "POST"])
@can_manage
def webhook_edit(request, pk: int | None = None):
    """A new endpoint gets its signing secret, shown on the answer to its creation only."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk) if pk else WebhookEndpoint()
    form = WebhookEndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save(commit=False)
        if endpoint.pk is None:
            made = notify.webhook_create(endpoint=endpoint, form_key=form.cleaned_data["form_key"],
                                         username=request.user.get_username())
            if made is not endpoint:  # this form made one already: its answer was reloaded, or sent twice
                messages.info(request, f"“{made.name}” was made already, from this same form: its secret was "
                                       "shown once, then. If you did not copy it, make a new one below.")
                return redirect("queues:webhook", pk=made.pk)
            return _show_secret(request, endpoint, status=201)
        endpoint.save()
        messages.success(request, f"“{endpoint.name}” is saved.")
        return redirect("queues:notifications")
    return render(request, "queues/notification_form.html", {
        "form": form, "endpoint": endpoint, "kind": "webhook", "events_help": EVENTS_HELP})


def _show_secret(request, endpoint: WebhookEndpoint, *, status: int):
    return render(request, "queues/notification_form.html", {
        "form": WebhookEndpointForm(instance=endpoint), "endpoint": endpoint, "kind": "webhook",
        "secret": endpoint.secret, "events_help": EVENTS_HELP}, status=status)


@never_cache
@require_POST
@can_manage
def webhook_secret(request, pk: int):
    """A new signing secret, shown once; the old one stops working at once."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    endpoint.secret = notify.webhook_secret_new()
    endpoint.save(update_fields=["secret"])
    return _show_secret(request, endpoint, status=200)


@require_http_methods(["GET", "POST"])
@can_manage
def webhook_delete(request, pk: int):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    if request.method == "POST":
        endpoint.delete()  # its delivery log stays, with the URL it had
        messages.success(request, f"“{endpoint.name}” is deleted; its delivery log stays.")
        return redirect("queues:notifications")
    return render(request, "queues/notification_delete.html", {"name": endpoint.name, "kind": "webhook"})


@require_http_methods(["GET", "POST"])
@can_manage
def email_edit(request, pk: int | None = None):
    subscription = get_object_or_404(EmailSubscription, pk=pk) if pk else EmailSubscription()
    form = EmailSubscriptionForm(request.POST or None, instance=subscription)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Emails to {form.instance.user.get_username()} are saved.")
        return redirect("queues:notifications")
    return render(request, "queues/notification_form.html", {
        "form": form, "subscription": subscription, "kind": "email", "events_help": EVENTS_HELP})


@require_http_methods(["GET", "POST"])
@can_manage
def email_delete(request, pk: int):
    subscription = get_object_or_404(EmailSubscription.objects.select_related("user"), pk=pk)
    if request.method == "POST":
        subscription.delete()
        messages.success(request, f"{subscription.user.get_username()} gets no more emails.")
        return redirect("queues:notifications")
    return render(request, "queues/notification_delete.html",
                  {"name": f"emails to {subscription.user.get_username()}", "kind": "email"})


@require_GET
@can_manage
def delivery_list(request):
    """The delivery log, newest first, LOG_PAGE at a time (before=<id> for older ones), by endpoint or status."""
    form = DeliveryFilterForm(request.GET)
    rows, older_query = None, ""
    if form.is_valid():
        rows = list(notify.deliveries_logged(**form.filters())[:LOG_PAGE + 1])
        if len(rows) > LOG_PAGE:
            older_query = form.query(before=rows[LOG_PAGE - 1].pk)
        rows = rows[:LOG_PAGE]
    return render(request, "queues/deliveries.html", {"form": form, "deliveries": rows, "older_query": older_query})


@require_GET
@can_manage
def delivery_detail(request, pk: int):
    delivery = get_object_or_404(Delivery.objects.select_related("endpoint"), pk=pk)
    return render(request, "queues/delivery.html", {"delivery": delivery, "attempts": delivery.attempt_log.all()})


@require_POST
@can_manage
def delivery_resend(request, pk: int):
    delivery = get_object_or_404(Delivery, pk=pk)
    try:
        notify.delivery_resend(delivery=delivery, user=request.user)
    except notify.DeliveryBusy:
        messages.warning(request, "It is being sent right now; its attempt shows here in a moment.")
    else:
        messages.success(request, "It is sent again now; the attempt shows here in a moment.")
    return redirect("queues:delivery", pk=pk)
