from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queue reroutes"

    def ready(self):
        """Wire each capability to the events of the others it reacts to (see dispatch.py)."""
        from . import dispatch, handovers, notify, rules

        dispatch.reroute_ended.connect(handovers.on_reroute_ended, dispatch_uid="handovers.on_reroute_ended")
        dispatch.monitor_cycle_ended.connect(rules.on_monitor_cycle_ended, dispatch_uid="rules.on_monitor_cycle_ended")
        dispatch.reroute_ended.connect(notify.on_reroute_ended, dispatch_uid="notify.on_reroute_ended")
        dispatch.handover_run_ended.connect(notify.on_handover_run_ended, dispatch_uid="notify.on_handover_run_ended")
        dispatch.rules_decided.connect(notify.on_rules_decided, dispatch_uid="notify.on_rules_decided")
