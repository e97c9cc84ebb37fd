"""A no-op Celery task for bench/pipeline.py's floor: loaded into the benchmark's worker only
(`celery worker --include bench.floor_tasks`), never shipped with the app."""

import os
import time

from celery import shared_task


@shared_task(ignore_result=True)
def floor_noop(path: str) -> None:
    """Write when it started, so the benchmark sees the broker hop of the same broker and pool."""
    started = time.time()
    partial = f"{path}.partial"
    with open(partial, "w") as out:
        out.write(repr(started))
    os.replace(partial, path)
