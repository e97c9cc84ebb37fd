"""The one place that publishes tasks, and through which one capability hears that another's work ended.

Tasks are published by name, so that nothing here imports the modules that run them: services,
handovers (and later rules and notifications) import this module, never each other in a circle.
A capability that must react to a reroute's end connects a receiver to `reroute_ended` in
`QueuesConfig.ready()`.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent after the transaction that ended a reroute has committed; receivers get `reroute=`.
reroute_ended = Signal()
# Sent after each cycle of the fleet monitor that ran (not one skipped for another's lease).
monitor_cycle_ended = Signal()
# Sent after the transaction that ended a handover run has committed; receivers get `run=`.
handover_run_ended = Signal()
# Sent after rules fired or would have fired (dry run); receivers get `decisions=` (RuleDecisions).
rules_decided = Signal()


def reroute_attempt(reroute_id: int, *, attempt: int, countdown: float = 0) -> None:
    """Publish one attempt of a reroute; raises when the broker cannot take it."""
    current_app.send_task("queues.tasks.reroute_run", args=(reroute_id, attempt), countdown=countdown)


def handover_advance(run_id: int) -> None:
    current_app.send_task("queues.tasks.handover_advance", args=(run_id,))


def notifications_send(*, countdown: float = 0) -> None:
    """Publish a run of the notification sender (queues/notify.py); raises when the broker cannot take it."""
    current_app.send_task("queues.tasks.notifications_send", countdown=countdown)


def monitor_nudge(device_id: str | None) -> None:
    """Read this number (or the device list) now, then evaluate the rules: SparkBot said it changed."""
    current_app.send_task("queues.tasks.monitor_nudge", args=(device_id,), expires=60)


def reroute_has_ended(reroute) -> None:
    """Tell every interested capability; one receiver failing never stops the others."""
    for receiver, result in reroute_ended.send_robust(sender=type(reroute), reroute=reroute):
        if isinstance(result, Exception):
            logger.error("after reroute %s ended, %s failed: %r", reroute.pk, getattr(receiver, "__qualname__",
                                                                                       receiver), result)


def monitor_cycle_has_ended() -> None:
    for receiver, result in monitor_cycle_ended.send_robust(sender=None):
        if isinstance(result, Exception):
            logger.error("after a monitor cycle, %s failed: %r", getattr(receiver, "__qualname__", receiver), result)


def handover_run_has_ended(run) -> None:
    for receiver, result in handover_run_ended.send_robust(sender=type(run), run=run):
        if isinstance(result, Exception):
            logger.error("after handover run %s ended, %s failed: %r", run.pk,
                         getattr(receiver, "__qualname__", receiver), result)


def rules_have_decided(decisions: list) -> None:
    if not decisions:
        return
    for receiver, result in rules_decided.send_robust(sender=type(decisions[0]), decisions=decisions):
        if isinstance(result, Exception):
            logger.error("after rule decisions %s…, %s failed: %r", decisions[0].pk,
                         getattr(receiver, "__qualname__", receiver), result)
