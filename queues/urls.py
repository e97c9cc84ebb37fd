from django.urls import path
from django.views.generic import RedirectView

from .views import reroute

app_name = "queues"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="queues:reroute"), name="home"),
    path("reroute/", reroute.reroute, name="reroute"),
    path("reroute/devices/", reroute.devices_refresh, name="devices_refresh"),
    path("reroute/queue/", reroute.queue_stats, name="queue_stats"),
    path("reroutes/<int:pk>/", reroute.reroute_detail, name="reroute_detail"),
]
