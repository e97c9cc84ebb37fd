#!/usr/bin/env python
"""Failover rules, measured: one evaluation of many rules over a big fleet, and how soon a number gone
offline has its messages on the target (the monitor's polling, and SparkBot's webhook).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sparkbot_dash REDIS_URL=redis://127.0.0.1:6379/14 \
      .venv/bin/python bench/rules.py --rules 200 --numbers 1000 --evaluations 50 --trials 5

1. Evaluation: 1,000 numbers written as the monitor keeps them (a tenth cannot deliver, a third hold
   messages), 200 enabled rules (half "cannot deliver", half "overflow"; a quarter watch every number,
   the rest five numbers each; targets from a pool of ten), then `rules_evaluate()` timed N times in
   this process after one warm-up (the first evaluation records every decision; later ones record
   only what changed, as in production). Before each, --changes numbers are read again as a monitor
   cycle does (new reading time, most often a new queue total). Timed twice: by the process that made
   the evaluation before (it reuses the decisions whose inputs did not change), and with nothing
   remembered (as after another process's evaluation).
2. Failover time: a real Celery worker with beat runs the monitor (cycle every MONITOR_CYCLE_SECONDS,
   device list every MONITOR_DEVICES_SECONDS: both --interval) against the sandbox, with one enabled
   rule of N = 0. Each trial marks a number offline in the sandbox and times until its messages are on
   the target, by the monitor's polling alone; then again with a webhook call right after the change.
Runs on a fresh test database (created and dropped here) and a fresh sandbox.
"""

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")
os.environ.setdefault("SECRET_KEY", "insecure-key-for-benchmarks-only")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"
os.environ.setdefault("SPARKBOT_WEBHOOK_SECRET", WEBHOOK_SECRET)

from sparkbot_sandbox.seed import SEED_DEVICES  # noqa: E402
from sparkbot_sandbox.state import SandboxState  # noqa: E402
from tests.support import Sandbox, Worker, database_url_in_use, timing_summary  # noqa: E402

SALES_1, SALES_4 = SEED_DEVICES[0]["id"], SEED_DEVICES[3]["id"]


def seed_fleet(numbers: int, rules: int) -> None:
    from django.utils import timezone

    from queues.models import Number, Rule

    rng, now = random.Random(1), timezone.now()
    rows = []
    for n in range(numbers):
        offline = rng.random() < 0.1
        total = rng.choice([0, 0, rng.randint(1, 400)])
        rows.append(Number(device_id=f"{n:024x}", alias=f"Number {n}", phone=f"+44770{n:07d}",
                           account_status="operative", session_status="offline" if offline else "online",
                           can_deliver=not offline, state_since=now, listed_at=now, queue_status="active",
                           queue_total=total, read_at=now, undeliverable_since=now if offline else None))
    Number.objects.bulk_create(rows)
    ids = [row.device_id for row in rows]
    pool = ids[-10:]
    Rule.objects.bulk_create(Rule(
        name=f"Rule {r}", owner_username="bench", enabled=True, dry_run=r % 2 == 0,
        condition="cannot_deliver" if r % 2 else "overflow", minutes=rng.choice([0, 5, 15]),
        messages=rng.choice([1, 50, 200]), all_sources=r % 4 == 0, exceptions=pool,
        sources=[] if r % 4 == 0 else rng.sample(ids[:-10], 5), target_kind="pool", targets=pool,
        cooldown_minutes=30) for r in range(rules))


def measure_evaluation(evaluations: int, changes: int) -> tuple[float, dict, list[float], list[float]]:
    """(seconds of the first evaluation, its decisions by outcome, the timings of the next ones in
    this process, and of as many made with nothing remembered, as after another process's evaluation).
    Before each one, `changes` numbers are read again as a monitor cycle would: a new reading time,
    and most often a new queue total."""
    from queues import rules

    rng = random.Random(2)
    started = time.perf_counter()
    first = rules.rules_evaluate()  # it records a decision for every source in trouble
    first_seconds = time.perf_counter() - started
    warm, cold = [], []
    for _ in range(evaluations):
        for timings in (warm, cold):
            monitor_reads(rng, changes)
            if timings is cold:
                rules.rules_forget()
            started = time.perf_counter()
            rules.rules_evaluate()
            timings.append(time.perf_counter() - started)
    return first_seconds, first, warm, cold


def monitor_reads(rng: random.Random, count: int) -> None:
    """What one monitor cycle writes: `count` numbers read again, their queues grown or drained."""
    from django.utils import timezone

    from queues.models import Number

    ids = rng.sample(list(Number.objects.order_by("device_id").values_list("device_id", flat=True)), count)
    numbers = list(Number.objects.filter(device_id__in=ids))
    for number in numbers:
        number.read_at = timezone.now()
        number.queue_total = max(0, (number.queue_total or 0) + rng.choice([-10, -3, 0, 3, 10]))
    Number.objects.bulk_update(numbers, ["read_at", "queue_total"])


def measure_failover(sandbox: Sandbox, trials: int, *, webhook: bool) -> list[float]:
    """Seconds from the sandbox marking a number offline to its messages being on the target."""
    from django.test import Client
    from django.urls import reverse

    from queues.models import Reroute, Rule

    client, timings = Client(), []
    hook = reverse("queues:sparkbot_hook", args=[WEBHOOK_SECRET])
    rule = Rule.objects.get(name="Bench failover")
    for _ in range(trials):
        sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "online"})
        _wait_until_seen_online(SALES_1)  # else the rule, on a stale reading, moves the new messages at once
        sandbox.set_queue(SALES_1, pending=12)
        time.sleep(1.0)
        before = Reroute.objects.filter(rule=rule).count()
        sandbox.control("POST", f"/devices/{SALES_1}", json={"sessionStatus": "offline"})
        started = time.monotonic()
        if webhook:
            client.post(hook, json.dumps({"event": "number:session", "data": {"device": {"id": SALES_1}}}),
                        content_type="application/json")
        while sandbox.queue(SALES_4)["total"] < 12 or Reroute.objects.filter(rule=rule).count() == before:
            if time.monotonic() - started > 120:
                last = Reroute.objects.filter(rule=rule).order_by("-id").first()
                raise RuntimeError(f"no failover within 120 s; the rule's last reroute: "
                                   f"{last and (last.pk, last.status, last.outcome)}")
            time.sleep(0.01)
        timings.append(time.monotonic() - started)
        sandbox.set_queue(SALES_4, pending=0, processing=0, scheduled=0)
    return timings


def _wait_until_seen_online(device_id: str) -> None:
    from queues.models import Number

    deadline = time.monotonic() + 120
    while not Number.objects.filter(device_id=device_id, can_deliver=True).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the monitor did not see {device_id} online within 120 s")
        time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--evaluations", type=int, default=50)
    parser.add_argument("--changes", type=int, default=20, help="numbers read again before each evaluation")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--interval", type=float, default=10, help="monitor cycle and device list interval, s")
    args = parser.parse_args()
    os.environ.update(MONITOR_CYCLE_SECONDS=str(args.interval), MONITOR_DEVICES_SECONDS=str(args.interval),
                      MONITOR_CALLS_PER_MINUTE="600")

    sandbox = Sandbox(SandboxState())
    os.environ["SPARKBOT_API_URL"] = sandbox.api_url
    import django

    django.setup()
    logging.getLogger("queues.rules").setLevel(logging.WARNING)  # not a line per dry-run decision
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from queues.models import Number, Rule
    from sparkbot_dash.celery import app

    setup_test_environment()
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    print(f"database: {connection.vendor}; broker: {settings.CELERY_BROKER_URL.split('://')[0]}", flush=True)
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    worker = None
    try:
        seed_fleet(args.numbers, args.rules)
        first_seconds, decided, warm, cold = measure_evaluation(args.evaluations, args.changes)
        print(f"the first evaluation ({sum(decided.values())} rule-and-source pairs, each decision recorded: "
              f"{ {str(outcome): n for outcome, n in sorted(decided.items())} }): {first_seconds:.2f} s")
        print(f"one evaluation of {args.rules} rules over {args.numbers} numbers, {args.changes} numbers read "
              f"again before each, by the process that made the one before: {timing_summary(warm)}", flush=True)
        print(f"the same after another process's evaluation (nothing remembered): {timing_summary(cold)}",
              flush=True)

        Number.objects.all().delete()
        Rule.objects.all().delete()
        Rule.objects.create(name="Bench failover", owner_username="bench", enabled=True, dry_run=False,
                            sources=[SALES_1], targets=[SALES_4], minutes=0, messages=1, cooldown_minutes=0)
        app.control.purge()
        worker = Worker({**os.environ, "DATABASE_URL": database_url_in_use()},
                        Path(tempfile.mkdtemp()) / "worker.log", beat=True)
        worker.start()
        time.sleep(args.interval + 2)  # the first cycle has read the fleet
        polled = measure_failover(sandbox, args.trials, webhook=False)
        print(f"offline to messages on the target, by polling (interval {args.interval:g} s): "
              f"{timing_summary(polled)}; mean {statistics.mean(polled):.2f} s", flush=True)
        hooked = measure_failover(sandbox, args.trials, webhook=True)
        print(f"offline to messages on the target, with the webhook: {timing_summary(hooked)}; "
              f"mean {statistics.mean(hooked):.2f} s", flush=True)
    finally:
        if worker:
            worker.stop()
        connection.creation.destroy_test_db(test_db, verbosity=0)
        sandbox.stop()


if __name__ == "__main__":
    main()
