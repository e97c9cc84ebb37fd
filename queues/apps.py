from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queue reroutes"

    def ready(self):
        """Wire each capability to the events of the others it reacts to (see dispatch.py)."""
        from . import dispatch, handovers

        dispatch.reroute_ended.connect(handovers.on_reroute_ended, dispatch_uid="handovers.on_reroute_ended")
