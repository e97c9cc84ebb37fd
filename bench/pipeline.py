#!/usr/bin/env python
"""A reroute's own overhead beside its floor, measured in one run; the route page; throughput.

    make bench            # PostgreSQL + Redis, as docs/PERFORMANCE.md reports
    .venv/bin/python bench/pipeline.py --reroutes 200 --devices 1000 --throughput 1000

Overhead of one reroute = (submit to end) - (time inside its SparkBot calls), with the sandbox
answering at once: what the form, the database, the broker and the worker add. Reroutes run one
after another so that each one's figure is its own.

The floor, measured in the same run on the same broker, worker pool and database:
- broker hop: a no-op task (bench/floor_tasks.py) from publish to its start, p50;
- a single-row commit (INSERT in autocommit), p50, times FLOOR_COMMITS: the commits a reroute
  needs (the request, the claim, the first reading before routing, the end);
- the three raw SparkBot calls (read, route, read), shown beside it: they are not overhead.
Beside the floor, not in it: a signed-in request that does no work (every middleware, the session and
the user read, refused before the view), what Django costs a submit before any of its work.
The overhead is printed as a ratio to the floor, with each reroute broken down by stage from its
own event times: submit (POST to its first event), request to start (first event to the claim),
each call's bookkeeping (time between events not spent inside the call), end (last call to ended_at).

The route page is timed server-side (Django's handler, in process) with --devices numbers.
Throughput: --throughput reroutes of distinct sources submitted at once to one worker process,
reroutes/s from the first request to the last end; then the same number of moves as one handover.
Runs on a fresh test database (created and dropped here) and a fresh sandbox.
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")
os.environ.setdefault("SECRET_KEY", "insecure-key-for-benchmarks-only")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # its test client speaks plain HTTP
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from sparkbot_sandbox.state import SandboxState  # noqa: E402
from tests.support import Sandbox, Worker, database_url_in_use, percentile, timing_summary  # noqa: E402

FLOOR_COMMITS = 4
# How often the bench reads a reroute to see whether it ended. Its figures come from the reroute's own
# times, not from this; reading every millisecond kept a core of this 2-core machine busy and made
# every reroute ~3 ms slower (docs/PERFORMANCE.md).
END_POLL_SECONDS = 0.005
# How a browser posts the route form, with htmx or without (Django's test client would send multipart).
BROWSER_FORM = "application/x-www-form-urlencoded"


# The route page -------------------------------------------------------------------------


def measure_route_page(client, requests: int) -> list[float]:
    client.get("/reroute/")  # warm: the device list and its rendered options are cached
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/reroute/")
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    return timings


# The floor ------------------------------------------------------------------------------


def measure_idle_request(client, requests: int) -> list[float]:
    """A signed-in request that does no work: PUT /reroute/ goes through every middleware, reads the
    session and the user, and is refused (405) before the view. What Django costs before any work."""
    timings, refusals = [], logging.getLogger("django.request")
    level = refusals.level
    refusals.setLevel(logging.ERROR)  # each 405 is logged as a warning; setLevel also clears logging's cache
    try:
        for _ in range(requests):
            started = time.perf_counter()
            response = client.put("/reroute/")
            timings.append(time.perf_counter() - started)
            assert response.status_code == 405, response.status_code
    finally:
        refusals.setLevel(level)
    return timings


def measure_broker_hop(samples: int) -> list[float]:
    """Publish to start of a no-op task on the same broker and worker pool."""
    from sparkbot_dash.celery import app

    folder, hops = Path(tempfile.mkdtemp()), []
    for n in range(samples):
        path = folder / f"hop-{n}"
        published = time.time()
        app.send_task("bench.floor_tasks.floor_noop", args=(str(path),))
        deadline = time.monotonic() + 10
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the no-op task did not run: is the worker started with --include?")
            time.sleep(0.0005)
        hops.append(float(path.read_text()) - published)
    return hops


def measure_commit(samples: int) -> list[float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_commit (id integer PRIMARY KEY, at real)")
        timings = []
        for n in range(samples):
            started = time.perf_counter()
            cursor.execute("INSERT INTO bench_commit (id, at) VALUES (%s, %s)", [n, time.time()])  # autocommit
            timings.append(time.perf_counter() - started)
        cursor.execute("DROP TABLE bench_commit")
    return timings


def measure_sparkbot_calls(sandbox: Sandbox, pairs, samples: int) -> list[float]:
    from queues import sparkbot

    client, timings = sparkbot.client(), []
    for source, target in pairs[:samples]:
        sandbox.set_queue(source, pending=10, processing=0, scheduled=0)
        started = time.perf_counter()
        client.queue_stats(source)
        client.route_queue(source, target)
        client.queue_stats(source)
        timings.append(time.perf_counter() - started)
    return timings


# Reroutes one after another --------------------------------------------------------------


def usable_pairs(device_list, count: int) -> list[tuple[str, str]]:
    usable = [d.id for d in device_list.devices if d.is_usable]
    return [(usable[i % len(usable)], usable[(i + 1) % len(usable)]) for i in range(count)]


def measure_reroutes(client, sandbox: Sandbox, pairs) -> tuple[list[float], list[float], list[dict]]:
    from queues.models import Reroute

    overheads, totals, stages = [], [], []
    for source, target in pairs:
        sandbox.set_queue(source, pending=10, processing=0, scheduled=0)
        submitted = time.time()
        form = urlencode({"source": source, "target": target, "note": "bench",
                          "idempotency_key": str(uuid.uuid4()), "reroute": "1"})
        response = client.post("/reroute/", form, content_type=BROWSER_FORM)
        assert response.status_code == 302, response.content[:500]
        pk = int(response["Location"].strip("/").split("/")[-1])
        reroute = wait_for_end(Reroute, pk)
        assert reroute.status == "succeeded", reroute.error_message
        total = reroute.ended_at.timestamp() - submitted
        totals.append(total)
        overheads.append(total - reroute.sparkbot_seconds)
        stages.append(stages_of(reroute, submitted))
    return overheads, totals, stages


def stages_of(reroute, submitted: float) -> dict:
    """Where one reroute's time went, from its own event times (seconds)."""
    events = list(reroute.events.order_by("id"))
    at = [e.at.timestamp() for e in events]
    kinds = [e.kind for e in events]
    started = kinds.index("started")
    calls = [i for i, kind in enumerate(kinds) if kind == "call"]
    bookkeeping, previous = [], at[started]
    for i in calls:
        bookkeeping.append(at[i] - previous - events[i].detail["ms"] / 1000)
        previous = at[i]
    return {"submit": at[0] - submitted, "request to start": at[started] - at[0],
            **{f"call {n + 1} bookkeeping": value for n, value in enumerate(bookkeeping)},
            "end": reroute.ended_at.timestamp() - at[calls[-1]]}


def wait_for_end(Reroute, pk: int, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reroute = Reroute.objects.get(pk=pk)
        if not reroute.is_active:
            return reroute
        time.sleep(END_POLL_SECONDS)
    raise RuntimeError(f"reroute {pk} did not end within {timeout} s")


# Throughput -----------------------------------------------------------------------------


def measure_throughput(sandbox: Sandbox, user, sources: list[str], target: str) -> float:
    """Reroutes/s of distinct sources submitted at once, first request to last end."""
    from django.db.models import Max, Min

    from queues import devices, services
    from queues.models import Reroute

    for source in sources:
        sandbox.set_queue(source, pending=3, processing=0, scheduled=0)
    listed = devices.device_list()
    before = Reroute.objects.count()
    for source in sources:
        services.reroute_request(source=listed.get(source), target=listed.get(target), note="throughput", user=user)
    batch = Reroute.objects.order_by("-id")[:len(sources)]
    ids = list(batch.values_list("pk", flat=True))
    while Reroute.objects.filter(pk__in=ids, status__in=Reroute.ACTIVE).exists():
        time.sleep(0.05)
    assert Reroute.objects.count() == before + len(sources)
    span = Reroute.objects.filter(pk__in=ids).aggregate(first=Min("created_at"), last=Max("ended_at"))
    return len(ids) / (span["last"] - span["first"]).total_seconds()


def measure_handover_throughput(sandbox: Sandbox, user, sources: list[str], target: str) -> float:
    from queues import handovers
    from queues.models import HandoverPlan, HandoverRun

    for source in sources:
        sandbox.set_queue(source, pending=3, processing=0, scheduled=0)
    plan = handovers.plan_save(plan=HandoverPlan(name=f"Throughput {time.time()}"),
                               pairs=[(source, target) for source in sources], user=user)
    run = handovers.handover_start(plan=plan, user=user)
    while not HandoverRun.objects.get(pk=run.pk).ended_at:
        time.sleep(0.05)
    run.refresh_from_db()
    return run.items.count() / (run.ended_at - run.created_at).total_seconds()


# Printing -------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def print_stages(stages: list[dict]) -> None:
    print("per stage, p50 (p99) over the reroutes:")
    for name in stages[0]:
        values = [s[name] for s in stages if name in s]
        print(f"  {name:<22} {ms(statistics.median(values))} ({ms(percentile(values, 0.99))})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reroutes", type=int, default=200)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--page-requests", type=int, default=300)
    parser.add_argument("--throughput", type=int, default=1000, help="reroutes of distinct sources (0: skip)")
    parser.add_argument("--pool", default="prefork", help="the worker's pool (prefork or threads)")
    parser.add_argument("--concurrency", type=int, default=2, help="the worker's pool size")
    args = parser.parse_args()

    # About nine generated numbers in ten can deliver: enough of them for --throughput distinct sources.
    sandbox = Sandbox(SandboxState(extra_devices=max(0, args.devices - 15, round(args.throughput / 0.85) + 20)))
    api_url = sandbox.api_url
    os.environ["SPARKBOT_API_URL"] = api_url
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from queues import devices
    from sparkbot_dash.celery import app

    print(f"database: {connection.vendor}; broker: {settings.CELERY_BROKER_URL.split('://')[0]}; "
          f"worker: one process, {args.pool} pool of {args.concurrency}; sandbox latency 0 ms", flush=True)
    setup_test_environment()  # lets Django's test client in
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    worker = Worker({**os.environ, "DATABASE_URL": database_url_in_use(), "SPARKBOT_API_URL": api_url},
                    Path(tempfile.mkdtemp()) / "worker.log", concurrency=args.concurrency, pool=args.pool,
                    include="bench.floor_tasks")
    try:
        app.control.purge()
        worker.start()
        devices.device_list_forget()
        from django.contrib.auth.models import Group, Permission

        from queues.roles import SHIFT_MANAGER, roles_ensure

        roles_ensure(Group, Permission)
        user = get_user_model().objects.create_user("bench", password="bench-password-123")
        user.groups.add(Group.objects.get(name=SHIFT_MANAGER))
        client = Client()
        client.force_login(user)

        page = measure_route_page(client, args.page_requests)
        listed = devices.device_list()
        print(f"GET /reroute/ with {len(listed.devices)} numbers: {timing_summary(page)}", flush=True)

        pairs = usable_pairs(listed, args.reroutes)
        measure_broker_hop(20)
        hops, commits = measure_broker_hop(200), measure_commit(200)
        calls = measure_sparkbot_calls(sandbox, pairs, 100)
        idle = measure_idle_request(client, 200)
        floor = statistics.median(hops) + FLOOR_COMMITS * statistics.median(commits)
        print(f"broker hop (no-op task, publish to start): {timing_summary(hops)}")
        print(f"single-row commit:                         {timing_summary(commits)}")
        print(f"three raw SparkBot calls:                  {timing_summary(calls)}")
        print(f"floor = hop p50 + {FLOOR_COMMITS} commits p50 = {ms(floor)}")
        print(f"beside it, not in it: a signed-in request that does no work (PUT /reroute/, 405): "
              f"{timing_summary(idle)}", flush=True)

        measure_reroutes(client, sandbox, pairs[:10])  # warm-up, not counted
        overheads, totals, stages = measure_reroutes(client, sandbox, pairs)
        print(f"reroute submit to end:                   {timing_summary(totals)}")
        print(f"reroute overhead (minus SparkBot time):  {timing_summary(overheads)}")
        print(f"overhead / floor: p50 {statistics.median(overheads) / floor:.2f}x (target <= 3), "
              f"p99 {percentile(overheads, 0.99) / floor:.2f}x (target <= 6)")
        print_stages(stages)

        if args.throughput:
            usable = [d.id for d in listed.devices if d.is_usable]
            target, sources = usable[0], usable[1:args.throughput + 1]
            rate = measure_throughput(sandbox, user, sources, target)
            print(f"throughput, {len(sources)} reroutes of distinct sources at once: {rate:.1f} reroutes/s",
                  flush=True)
            rate = measure_handover_throughput(sandbox, user, sources, target)
            print(f"throughput, one handover of {len(sources)} moves (HANDOVER_CONCURRENCY "
                  f"{settings.HANDOVER_CONCURRENCY}): {rate:.1f} moves/s", flush=True)
    finally:
        worker.stop()
        connection.creation.destroy_test_db(test_db, verbosity=0)
        sandbox.stop()


if __name__ == "__main__":
    main()
