#!/usr/bin/env python
"""How close a big handover comes to the ideal wall time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sparkbot_dash REDIS_URL=redis://127.0.0.1:6379/14 \
      .venv/bin/python bench/handover.py --pairs 500 --latency-ms 200 --concurrency 20

Runs one handover of N pairs (N distinct sources, each with queued messages) against the
sandbox answering every call after the given latency, with HANDOVER_CONCURRENCY moves at
once and a Celery worker with enough threads. Each move makes three SparkBot calls (read
the queue, route it, read it again), so the ideal wall time is
pairs x 3 x latency / concurrency; the figure reported is wall time / ideal.
Runs on a fresh test database (created and dropped here) and a fresh sandbox.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")
os.environ.setdefault("SECRET_KEY", "insecure-key-for-benchmarks-only")

from sparkbot_sandbox.seed import extra_devices  # noqa: E402
from sparkbot_sandbox.state import SandboxState  # noqa: E402
from tests.support import Sandbox, Worker, database_url_in_use  # noqa: E402

CALLS_PER_MOVE = 3


def print_breakdown(run, concurrency: int, wall: float) -> None:
    """Where a move's time goes: waiting for a worker, inside SparkBot, the rest of its run, refilling its slot."""
    rows = list(run.reroutes.order_by("created_at").values_list("created_at", "started_at", "ended_at",
                                                                "sparkbot_seconds"))
    ends = sorted(ended for *_, ended, _ in rows)
    refills = [(rows[i][0] - ends[i - concurrency]).total_seconds() for i in range(concurrency, len(rows))]
    busy = sum((ended - started).total_seconds() for _, started, ended, _ in rows)
    print(f"moves running at once, on average: {busy / wall:.1f} of {concurrency}; "
          f"a freed slot is refilled after {sum(refills) / len(refills) * 1000:.1f} ms on average")
    waits = [(started - created).total_seconds() for created, started, _, _ in rows]
    runs = [(ended - started).total_seconds() for _, started, ended, _ in rows]
    sparkbot = [seconds for *_, seconds in rows]
    mean = lambda values: sum(values) / len(values) * 1000  # noqa: E731
    print(f"per move, mean: queued before a worker took it {mean(waits):.1f} ms; running {mean(runs):.1f} ms, "
          f"of which inside SparkBot calls {mean(sparkbot):.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()

    devices = [d["id"] for d in extra_devices(args.pairs * 2)[0] if d["status"] in ("operative", "ready")]
    sources, targets = devices[:args.pairs], devices[args.pairs:args.pairs + 10]
    sandbox = Sandbox(SandboxState(extra_devices=args.pairs * 2))
    os.environ.update(SPARKBOT_API_URL=sandbox.api_url, HANDOVER_CONCURRENCY=str(args.concurrency))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from queues import devices, handovers
    from queues.models import HandoverPlan
    from sparkbot_dash.celery import app

    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    worker = Worker({**os.environ, "DATABASE_URL": database_url_in_use()}, Path(tempfile.mkdtemp()) / "worker.log",
                    concurrency=args.concurrency + 4, pool="threads")
    try:
        app.control.purge()
        worker.start()
        for source in sources:
            sandbox.set_queue(source, pending=5, processing=0, scheduled=0)
        plan = handovers.plan_save(plan=HandoverPlan(name="bench"), user=None,
                                   pairs=[(s, targets[n % len(targets)]) for n, s in enumerate(sources)])
        sandbox.control("POST", "/latency", json={"ms": args.latency_ms})
        cold = time.monotonic()
        devices.device_list()  # as a manager's plan page would have: timed apart from the run
        print(f"loading the device list ({len(devices.device_list().devices)} numbers) took "
              f"{time.monotonic() - cold:.2f} s")
        started = time.monotonic()
        run = handovers.handover_start(plan=plan, user=None)
        while run.ended_at is None:
            time.sleep(0.05)
            run.refresh_from_db()
        wall = time.monotonic() - started
        succeeded = run.reroutes.filter(status="succeeded").count()
        ideal = args.pairs * CALLS_PER_MOVE * args.latency_ms / 1000 / args.concurrency
        print(f"database: {connection.vendor}; broker: {settings.CELERY_BROKER_URL.split('://')[0]}; "
              f"{args.pairs} pairs, {args.latency_ms:g} ms per SparkBot call, concurrency {args.concurrency}")
        print(f"succeeded {succeeded} of {args.pairs}; wall {wall:.2f} s; ideal {ideal:.2f} s; "
              f"ratio {wall / ideal:.3f} (target <= 1.2)")
        print_breakdown(run, args.concurrency, wall)
    finally:
        worker.stop()
        connection.creation.destroy_test_db(test_db, verbosity=0)
        sandbox.stop()


if __name__ == "__main__":
    main()
