"""Periodic tasks: a worker that was down does not come back to a backlog of sweeps and ticks."""

import time

import pytest
from django.conf import settings

from sparkbot_dash.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_gives_every_periodic_task_an_expiry_of_one_period():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["options"]["expires"] == entry["schedule"], name


def test_it_discards_periodic_work_that_waited_longer_than_its_period(worker_on_broker, sandbox_server):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-lost-reroutes"]
    backlog = [app.send_task(entry["task"], expires=0.5).id for _ in range(3)]  # as beat sends it, period 0.5 s
    time.sleep(1)  # the worker is down for longer than the period
    worker = worker_on_broker(sandbox_server.api_url)
    deadline = time.monotonic() + 15
    log = ""
    while time.monotonic() < deadline and log.count("Discarding revoked task") < len(backlog):
        time.sleep(0.1)
        log = worker.log_path.read_text()
    for task_id in backlog:
        assert f"Discarding revoked task: {entry['task']}[{task_id}]" in log
    assert "succeeded" not in log
