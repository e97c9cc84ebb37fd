import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")

app = Celery("sparkbot_dash")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes the database connection before and after every task unless told to
# reuse it: a new PostgreSQL connection per task. Connections are kept instead (CONN_MAX_AGE) and
# checked by Django's own close_old_connections around each task (CONN_HEALTH_CHECKS; queues/tasks.py),
# so that a restarted database costs one failed check, not a task.
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000
app.autodiscover_tasks()


@app.on_after_configure.connect
def _create_broker_folders(sender, **kwargs):
    """The filesystem broker needs its folders before any process touches them."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
