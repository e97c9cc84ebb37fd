from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from .views import handover, history, hooks, notifications, numbers, plans, reroute, rules, tokens

app_name = "queues"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="queues:reroute"), name="home"),
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("queues/favicon.svg"))), name="favicon"),
    path("reroute/", reroute.reroute, name="reroute"),
    path("reroute/devices/", reroute.devices_refresh, name="devices_refresh"),
    path("reroute/preview/", reroute.preview, name="reroute_preview"),
    path("reroute/recent/", reroute.recent_reroutes, name="reroute_recent"),
    path("reroutes/<int:pk>/", reroute.reroute_detail, name="reroute_detail"),
    path("numbers/", numbers.numbers_overview, name="numbers"),
    path("numbers/<str:device_id>/", numbers.number_detail, name="number"),
    path("history/", history.history_list, name="history"),
    path("history/export.csv", history.history_export_csv, name="history_export_csv"),
    path("history/export.jsonl", history.history_export_jsonl, name="history_export_jsonl"),
    path("handovers/", handover.handover_list, name="handovers"),
    path("handovers/plans/new/", plans.plan_edit, name="handover_plan_new"),
    path("handovers/plans/<int:pk>/", plans.plan_edit, name="handover_plan"),
    path("handovers/plans/<int:pk>/export.csv", plans.plan_export_csv, name="handover_plan_export"),
    path("handovers/plans/<int:pk>/copy/", handover.plan_copy, name="handover_plan_copy"),
    path("handovers/plans/<int:pk>/delete/", handover.plan_delete, name="handover_plan_delete"),
    path("handovers/plans/<int:pk>/run/", handover.plan_run, name="handover_plan_run"),
    path("handovers/runs/<int:pk>/", handover.run_detail, name="handover_run"),
    path("handovers/runs/<int:pk>/retry/", handover.run_retry, name="handover_run_retry"),
    path("handovers/runs/<int:pk>/cancel/", handover.run_cancel, name="handover_run_cancel"),
    path("hooks/sparkbot/<str:secret>", hooks.sparkbot_hook, name="sparkbot_hook"),
    path("rules/", rules.rule_list, name="rules"),
    path("rules/new/", rules.rule_edit, name="rule_new"),
    path("rules/<int:pk>/", rules.rule_detail, name="rule"),
    path("rules/<int:pk>/edit/", rules.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/switch/", rules.rule_switch, name="rule_switch"),
    path("rules/<int:pk>/delete/", rules.rule_delete, name="rule_delete"),
    path("account/tokens/", tokens.token_list, name="tokens"),
    path("account/tokens/all/", tokens.token_list_all, name="tokens_all"),
    path("account/tokens/<int:pk>/revoke/", tokens.token_revoke, name="token_revoke"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/webhooks/new/", notifications.webhook_edit, name="webhook_new"),
    path("notifications/webhooks/<int:pk>/", notifications.webhook_edit, name="webhook"),
    path("notifications/webhooks/<int:pk>/secret/", notifications.webhook_secret, name="webhook_secret"),
    path("notifications/webhooks/<int:pk>/delete/", notifications.webhook_delete, name="webhook_delete"),
    path("notifications/emails/new/", notifications.email_edit, name="email_new"),
    path("notifications/emails/<int:pk>/", notifications.email_edit, name="email"),
    path("notifications/emails/<int:pk>/delete/", notifications.email_delete, name="email_delete"),
    path("notifications/deliveries/", notifications.delivery_list, name="deliveries"),
    path("notifications/deliveries/<int:pk>/", notifications.delivery_detail, name="delivery"),
    path("notifications/deliveries/<int:pk>/send-again/", notifications.delivery_resend, name="delivery_resend"),
]
