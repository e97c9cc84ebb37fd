from django.urls import path
from django.views.generic import RedirectView

from .views import handover, history, reroute

app_name = "queues"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="queues:reroute"), name="home"),
    path("reroute/", reroute.reroute, name="reroute"),
    path("reroute/devices/", reroute.devices_refresh, name="devices_refresh"),
    path("reroute/queue/", reroute.queue_stats, name="queue_stats"),
    path("reroutes/<int:pk>/", reroute.reroute_detail, name="reroute_detail"),
    path("history/", history.history_list, name="history"),
    path("history/export.csv", history.history_export_csv, name="history_export_csv"),
    path("history/export.jsonl", history.history_export_jsonl, name="history_export_jsonl"),
    path("handovers/", handover.handover_list, name="handovers"),
    path("handovers/plans/new/", handover.plan_edit, name="handover_plan_new"),
    path("handovers/plans/<int:pk>/", handover.plan_edit, name="handover_plan"),
    path("handovers/plans/<int:pk>/copy/", handover.plan_copy, name="handover_plan_copy"),
    path("handovers/plans/<int:pk>/delete/", handover.plan_delete, name="handover_plan_delete"),
    path("handovers/plans/<int:pk>/run/", handover.plan_run, name="handover_plan_run"),
    path("handovers/runs/<int:pk>/", handover.run_detail, name="handover_run"),
    path("handovers/runs/<int:pk>/retry/", handover.run_retry, name="handover_run_retry"),
    path("handovers/runs/<int:pk>/cancel/", handover.run_cancel, name="handover_run_cancel"),
]
