"""Thin Celery tasks: they take ids, call services, and own the retry schedule."""

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.db import close_old_connections

from . import handovers, monitor, notify, rules, services, sparkbot


@worker_process_init.connect
def _fresh_http_client(**kwargs):
    """A forked worker process must not share (or close) its parent's connection pool."""
    sparkbot.client_reset(close=False)


@task_prerun.connect
@task_postrun.connect
def _database_connection_fit_for_use(**kwargs):
    """What Django does around each request: drop a connection that broke or outlived CONN_MAX_AGE."""
    close_old_connections()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def reroute_run(reroute_id: int, attempt: int = 1) -> None:
    wait = services.reroute_execute(reroute_id=reroute_id, attempt=attempt)
    if wait is not None:
        services.reroute_retry_scheduled(reroute_id=reroute_id, attempt=attempt + 1, wait=wait)


@shared_task(ignore_result=True)
def reroutes_sweep() -> dict:
    return services.reroutes_sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def handover_advance(run_id: int) -> None:
    handovers.handover_advance(run_id=run_id)


@shared_task(ignore_result=True)
def handovers_tick() -> dict:
    return handovers.handovers_tick()


@shared_task(ignore_result=True)
def monitor_cycle() -> dict:
    return vars(monitor.monitor_cycle())


@shared_task(ignore_result=True)
def monitor_prune() -> dict:
    return monitor.snapshots_prune()


@shared_task(ignore_result=True)
def monitor_nudge(device_id: str | None = None) -> dict:
    """SparkBot's webhook: read the number it named now, then evaluate the rules with that reading."""
    report = vars(monitor.monitor_nudge(device_id=device_id))
    report["rules"] = rules.rules_evaluate(wait_seconds=5)
    return report


@shared_task(ignore_result=True)
def notifications_send() -> dict:
    return notify.notifications_send()
