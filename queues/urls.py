from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "queues"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="queues:reroute"), name="home"),
    path("reroute/", views.reroute, name="reroute"),
    path("reroute/devices/", views.devices_refresh, name="devices_refresh"),
    path("reroute/queue/", views.queue_stats, name="queue_stats"),
    path("reroutes/<int:pk>/", views.reroute_detail, name="reroute_detail"),
]
