#!/usr/bin/env python
"""Measure the fleet overview and the fleet monitor at 1,000 numbers on PostgreSQL (issue 10, item 6).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sparkbot_dash_bench REDIS_URL=redis://127.0.0.1:6379/10 \\
      .venv/bin/python bench/overview.py          # as docs/PERFORMANCE.md reports
    .venv/bin/python bench/overview.py --keepdb --requests 50 --cycles 3 --profile

1. Creates a fresh test database (test_<name>; dropped at the end unless --keepdb) and seeds it
   (timed) with the sandbox's fleet, 15 seeded numbers and 985 generated ones, as the monitor
   would have recorded it over 30 days: each number's state and since when, its queue now, its
   day of half-hour highs (depth_24h), and its snapshots as the monitor keeps them (one on every
   change and at least every MONITOR_HEARTBEAT_MINUTES for the last 7 days, one an hour before
   that, as snapshots_prune thins them), written with COPY; plus --reroutes ended, chained
   reroutes among these numbers over the same 30 days (bench/seed_history.py's seeder), whose
   last day the sparklines mark. Then VACUUM ANALYZE, as autovacuum would have by then.
2. Server time of the overview's pages and a number's page (Django's handler in process, test
   client, a signed-in support lead): 5 warm-up requests, then --requests timed ones each; the
   HTML size; the queries and the database's share of one request.
3. Monitor cycles against the sandbox in its own process (its CPU is not this process's) at
   1,000 devices and 100 ms latency per call: each a worst case, the device list due (a walk of
   every page) and the whole budget share of queue readings left: wall time, CPU of this process
   (time.process_time() around monitor_cycle(): the waits for SparkBot use none), and the wall
   and CPU time inside SparkBot calls. --profile prints where a cycle's CPU goes (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")
os.environ.setdefault("SECRET_KEY", "insecure-key-for-benchmarks-only")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # its test client speaks plain HTTP

from tests.support import SandboxProcess, percentile, timing_summary  # noqa: E402

EXTRA_DEVICES = 985  # with the sandbox's 15 seeded devices: 1,000 numbers
STEP = timedelta(minutes=5)  # how often the simulated monitor reads a number in the last week
FULL_DAYS = 7  # snapshots_prune keeps every snapshot of the last week, one an hour before
TARGET_PAGE_P95_MS = 50
TARGET_PAGE_BYTES = 300 * 1024
TARGET_CYCLE_CPU_MS = 100


# Seeding ------------------------------------------------------------------------------------


class Fleet:
    """The sandbox's devices and their queues now: what the seeded history must end in."""

    def __init__(self):
        from queues.sparkbot import Device
        from sparkbot_sandbox.seed import initial_state

        listed, queues = initial_state(EXTRA_DEVICES)
        self.devices = [Device.from_api(d) for d in listed]
        self.depth = {device_id: sum(counts.values()) for device_id, counts in queues.items()}


def simulate(rng: random.Random, device, depth_now: int, *, now: datetime, days: int, heartbeat: timedelta):
    """One number's readings, oldest first: [(at, account, session, depth)] as the monitor keeps them,
    the state it ends in with since when, and its depth_24h."""
    from queues.monitor import DAY_SLOTS, SLOT_SECONDS

    start, full_from = now - timedelta(days=days), now - timedelta(days=FULL_DAYS)
    final = (device.status, device.session_status)
    online = (device.status, "online")
    # A number that cannot deliver now has been so for 10 minutes to 10 days; before, and for the
    # others, a few offline spells of 10 minutes to 6 hours a month.
    stuck_since = now - timedelta(minutes=rng.uniform(10, 14400)) if not device.can_deliver else now
    spells = []
    for _ in range(rng.randint(0, 4)):
        begin = start + timedelta(seconds=rng.uniform(0, (stuck_since - start).total_seconds()))
        spells.append((begin, begin + timedelta(minutes=rng.uniform(10, 360))))

    def state_at(at: datetime) -> tuple[str, str]:
        if at >= stuck_since:
            return final
        return (device.status, "offline") if any(b <= at < e for b, e in spells) else online

    rows, depth, last = [], 0, None
    at = start
    slots: dict[int, int] = {}
    while at <= now:
        state = state_at(at)
        can_deliver = state[1] == "online" and state[0] in ("operative", "ready")
        if at + STEP > now:
            depth = depth_now  # the reading that ends the history is the sandbox's queue now
        elif can_deliver:
            depth = max(0, depth - rng.randint(0, 20)) if depth else (rng.randint(1, 40) if rng.random() < .03 else 0)
        else:
            depth += rng.randint(0, 6)
        thinned = at < full_from  # older than a week: one reading an hour is what pruning leaves
        step = timedelta(hours=1) if thinned else STEP
        if thinned or last is None or (state, depth) != last[1:] or at - last[0] >= heartbeat:
            rows.append((at, *state, depth))
            last = (at, state, depth)
        if at > now - timedelta(days=1):
            slot = int(at.timestamp()) // SLOT_SECONDS
            slots[slot] = max(slots.get(slot, 0), depth)
        at += step
    since = stuck_since if stuck_since < now else max((e for _b, e in spells if e <= now), default=start)
    current_slot = int(now.timestamp()) // SLOT_SECONDS
    depth_24h = [[slot, high] for slot, high in sorted(slots.items()) if slot > current_slot - DAY_SLOTS]
    return rows, since, depth_24h


def seed(*, reroutes: int, days: int, seed_value: int) -> dict:
    """The fleet's numbers, their snapshots and the reroutes among them; returns what was written."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from queues.models import Number, NumberSnapshot

    fleet, rng, now = Fleet(), random.Random(seed_value), timezone.now()
    heartbeat = timedelta(minutes=settings.MONITOR_HEARTBEAT_MINUTES)
    started = time.perf_counter()
    histories = {}
    numbers = []
    for device in fleet.devices:
        depth_now = fleet.depth.get(device.id, 0)
        rows, since, depth_24h = simulate(rng, device, depth_now, now=now, days=days, heartbeat=heartbeat)
        histories[device.id] = rows
        read_at = now - timedelta(seconds=rng.uniform(1, 480))
        numbers.append(Number(
            device_id=device.id, alias=device.alias, phone=device.phone, account_status=device.status,
            session_status=device.session_status, can_deliver=device.can_deliver, state_since=since,
            undeliverable_since=None if device.can_deliver else since, listed=True,
            listed_at=now - timedelta(seconds=rng.uniform(1, 30)), queue_status="active", queue_total=depth_now,
            queue_pending=depth_now, queue_processing=0, queue_scheduled=0, read_at=read_at,
            snapshot_at=rows[-1][0], depth_24h=depth_24h))
    simulated = time.perf_counter() - started
    with transaction.atomic():
        made = Number.objects.bulk_create(numbers)
        table = NumberSnapshot._meta.db_table
        columns = ("number_id", "at", "account_status", "session_status", "queue_status", "queue_total",
                   "queue_pending", "queue_processing", "queue_scheduled")
        snapshots = 0
        with connection.cursor() as cursor, cursor.cursor.copy(
                f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
            for number in made:
                for at, account, session, depth in histories[number.device_id]:
                    copy.write_row((number.pk, at, account, session, "active", depth, depth, 0, 0))
                    snapshots += 1
    written = time.perf_counter() - started - simulated
    history = seed_reroutes(fleet, rows=reroutes, days=days, seed_value=seed_value, until=now)
    return {"numbers": len(made), "snapshots": snapshots, "simulated_s": simulated, "written_s": written,
            "reroutes": history}


def seed_reroutes(fleet: Fleet, *, rows: int, days: int, seed_value: int, until: datetime) -> dict:
    """Ended, chained reroutes among the fleet's numbers: bench/seed_history.py's seeder, given these numbers."""
    from django.db import transaction

    from bench.seed_history import Seeder, summary

    class FleetSeeder(Seeder):
        def _devices(self):
            chosen = list(fleet.devices)
            self.rng.shuffle(chosen)
            return chosen

    started = time.perf_counter()
    with transaction.atomic():
        seeder = FleetSeeder(rng=random.Random(seed_value), seed=seed_value, rows=rows,
                             start=until - timedelta(days=days), until=until, batch=5000)
        report = seeder.run()
    report = {**report, "rows": rows, "days": days, "seconds": time.perf_counter() - started, "writer": "COPY"}
    print(summary(report), flush=True)
    return report


def database_ready(args) -> None:
    from django.db import connection

    from queues.models import Number

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keepdb, serialize=False)
    if args.keepdb and Number.objects.count() >= 1000:
        print(f"reusing test database {connection.settings_dict['NAME']}", flush=True)
        return
    report = seed(reroutes=args.reroutes, days=args.days, seed_value=args.seed)
    print(f"seeded {report['numbers']:,} numbers and {report['snapshots']:,} snapshots over {args.days} days: "
          f"simulated in {report['simulated_s']:.1f} s, written (COPY) in {report['written_s']:.1f} s", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in ("queues_number", "queues_numbersnapshot", "queues_reroute", "queues_rerouteevent"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"VACUUM ANALYZE: {time.perf_counter() - started:.1f} s", flush=True)


# Pages --------------------------------------------------------------------------------------


def lead_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    from conftest import user_with_role
    from queues.roles import SUPPORT_LEAD

    user = get_user_model().objects.filter(username="bench-lead").first() or user_with_role("bench-lead", SUPPORT_LEAD)
    client = Client()
    client.force_login(user)
    return client


def time_page(client, url: str, requests: int, headers: dict) -> tuple[list[float], list[float], int]:
    """Server time of each request (wall), this process's CPU time of each (what other processes on a
    busy machine cannot inflate as much), and the size of the HTML."""
    for _ in range(5):  # warm: connections, caches, the first plan
        assert client.get(url, **headers).status_code == 200, url
    timings, cpu, size = [], [], 0
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, **headers)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        assert response.status_code == 200, url
        size = len(response.content)
    return timings, cpu, size


def queries_of(client, url: str, headers: dict) -> str:
    """The queries of one request: how many, their share of it, and the slowest."""
    from django.db import connection

    timed = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append((time.perf_counter() - started, sql))

    with connection.execute_wrapper(timer):
        started = time.perf_counter()
        client.get(url, **headers)
        whole = time.perf_counter() - started
    seconds, sql = max(timed)
    return (f"    {len(timed)} queries took {sum(t for t, _ in timed) * 1000:.1f} ms of the request's "
            f"{whole * 1000:.1f} ms; the slowest {seconds * 1000:.1f} ms: {sql[:160]}…")


def page_urls() -> dict[str, tuple[str, dict]]:
    from django.db.models import Count, Q

    from queues.models import Number, Reroute

    week_ago = Reroute.objects.order_by("-id").values_list("created_at", flat=True).first() - timedelta(days=7)
    recent = Reroute.objects.filter(created_at__gte=week_ago)
    busiest = (recent.values("source_id").annotate(n=Count("id")).order_by("-n")
               .values_list("source_id", flat=True).first())
    flapping = (Number.objects.annotate(n=Count("snapshots", filter=Q(snapshots__session_status="offline")))
                .order_by("-n").values_list("device_id", flat=True).first())
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TRIGGER": "numbers-live"}
    last_page = -(-Number.objects.filter(listed=True).count() // 50)
    return {
        "overview, first page": ("/numbers/", {}),
        "overview, first page, htmx poll": ("/numbers/", htmx),
        "overview, ?cannot_deliver=1": ("/numbers/?cannot_deliver=1", {}),
        "overview, ?has_messages=1&q=agent 01": ("/numbers/?has_messages=1&q=agent+01", {}),
        f"overview, last page (?page={last_page})": (f"/numbers/?page={last_page}", {}),
        "number page, busiest number (most reroutes)": (f"/numbers/{busiest}/", {}),
        "number page, most offline snapshots": (f"/numbers/{flapping}/", {}),
        "number page, htmx poll": (f"/numbers/{busiest}/", {"HTTP_HX_REQUEST": "true"}),
    }


def measure_pages(requests: int) -> list[tuple[str, float, float, int]]:
    client = lead_client()
    verdicts = []
    for name, (url, headers) in page_urls().items():
        timings, cpu, size = time_page(client, url, requests, headers)
        verdicts.append((name, percentile(timings, 0.95) * 1000, percentile(cpu, 0.95) * 1000, size))
        print(f"GET {url}{' (htmx)' if headers else ''}\n  {name}: {timing_summary(timings)}; {size / 1024:.1f} KiB"
              f"\n    CPU of this process: p50 {statistics.median(cpu) * 1000:.1f} ms, "
              f"p95 {percentile(cpu, 0.95) * 1000:.1f} ms", flush=True)
        print(queries_of(client, url, headers), flush=True)
    return verdicts


# The monitor --------------------------------------------------------------------------------


class CallClock:
    """Wall and CPU time spent inside SparkBot calls (the client's _call, HTTP included)."""

    def __init__(self):
        from queues import sparkbot

        self.wall = self.cpu = 0.0
        self.calls = 0
        self.original = sparkbot.SparkBotClient._call
        clock = self

        def timed(client, *args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return clock.original(client, *args, **kwargs)
            finally:
                clock.wall += time.perf_counter() - wall
                clock.cpu += time.process_time() - cpu
                clock.calls += 1

        sparkbot.SparkBotClient._call = timed

    def reset(self):
        self.wall = self.cpu = 0.0
        self.calls = 0


def worst_case_ahead(*, walk: bool) -> None:
    """The device list due (or not) and the whole minute's budget left."""
    from queues.models import MonitorState

    fields = {"calls": [], "paused_until": None, "pause_reason": "", "failures": 0}
    if walk:
        fields["devices_read_at"] = None
    MonitorState.objects.filter(pk=MonitorState.SINGLETON).update(**fields)


def measure_monitor(cycles: int, latency_ms: float, profile: bool) -> list[dict]:
    from django.conf import settings

    from queues import devices, monitor, sparkbot

    sandbox = SandboxProcess(extra_devices=EXTRA_DEVICES)
    try:
        sandbox.control("POST", "/latency", json={"ms": latency_ms})
        settings.SPARKBOT_API_URL = sandbox.api_url
        sparkbot.client_reset()
        devices.device_list_forget()
        monitor.monitor_state()
        clock = CallClock()
        print(f"\nmonitor: sandbox in its own process (pid {sandbox.pid}), {EXTRA_DEVICES + 15:,} devices, "
              f"{latency_ms:g} ms a call; MONITOR_CYCLE_SECONDS={settings.MONITOR_CYCLE_SECONDS:g}, "
              f"MONITOR_DEVICES_SECONDS={settings.MONITOR_DEVICES_SECONDS:g}, "
              f"MONITOR_CALLS_PER_MINUTE={settings.MONITOR_CALLS_PER_MINUTE}", flush=True)
        worst_case_ahead(walk=True)
        monitor.monitor_cycle()  # warm: the first walk fills the cache and connections
        results = []
        for kind in ["walk and readings"] * cycles + ["readings only"] * max(1, cycles // 2):
            worst_case_ahead(walk=kind == "walk and readings")
            sandbox.clear_calls()
            clock.reset()
            profiler = cProfile.Profile(time.process_time) if profile and not results else None  # CPU, not waits
            wall, cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            report = monitor.monitor_cycle()
            if profiler:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            result = {"kind": kind, "wall": wall, "cpu": cpu, "calls_wall": clock.wall, "calls_cpu": clock.cpu,
                      "calls": clock.calls, "sandbox_calls": len(sandbox.calls()), "readings": report.readings,
                      "walked": report.walked, "changed": report.changed}
            results.append(result)
            print(f"  cycle ({kind}): wall {wall * 1000:.0f} ms, of which inside {clock.calls} SparkBot calls "
                  f"{clock.wall * 1000:.0f} ms; CPU of this process {cpu * 1000:.1f} ms, of which inside the calls "
                  f"{clock.cpu * 1000:.1f} ms, outside {(cpu - clock.cpu) * 1000:.1f} ms; {report.readings} readings, "
                  f"{result['sandbox_calls']} calls seen by the sandbox, {report.changed} changes", flush=True)
            if profiler:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
                print(out.getvalue(), flush=True)
        return results
    finally:
        sandbox.stop()


# Main ---------------------------------------------------------------------------------------


def summary_line(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f}, max {max(values):.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30, help="Days of readings (default 30).")
    parser.add_argument("--reroutes", type=int, default=9000, help="Reroutes over those days (default 9,000).")
    parser.add_argument("--requests", type=int, default=200, help="Timed requests per page (default 200).")
    parser.add_argument("--cycles", type=int, default=10, help="Monitor cycles with a walk (default 10; half as "
                                                               "many without).")
    parser.add_argument("--latency-ms", type=float, default=100, help="Sandbox latency per call (default 100).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keepdb", action="store_true", help="Keep the test database, and reuse it if seeded.")
    parser.add_argument("--profile", action="store_true", help="cProfile the first measured monitor cycle.")
    parser.add_argument("--part", choices=["all", "pages", "monitor"], default="all", help="What to measure.")
    args = parser.parse_args()
    if args.days < FULL_DAYS or args.reroutes < 1:
        parser.error(f"--days must be at least {FULL_DAYS} and --reroutes at least 1.")

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/overview.py measures PostgreSQL only: set DATABASE_URL=postgres://... "
                 f"(this run would use {connection.vendor}).")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    test_db = None
    try:
        database_ready(args)
        test_db = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
        print(f"PostgreSQL {version}; {os.cpu_count()} cores", flush=True)
        pages = measure_pages(args.requests) if args.part != "monitor" else []
        cycles = measure_monitor(args.cycles, args.latency_ms, args.profile) if args.part != "pages" else []
        print(f"\nverdicts (load average when done: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores):")
        for name, p95, cpu_p95, size in pages:
            met = p95 <= TARGET_PAGE_P95_MS and (size <= TARGET_PAGE_BYTES or not name.startswith("overview"))
            print(f"  {name}: p95 {p95:.1f} ms (CPU p95 {cpu_p95:.1f} ms), {size / 1024:.1f} KiB: "
                  f"{'met' if met else 'MISSED'} "
                  f"(target p95 <= {TARGET_PAGE_P95_MS} ms; the overview <= {TARGET_PAGE_BYTES // 1024} KiB)")
        for kind in dict.fromkeys(c["kind"] for c in cycles):
            mine = [c for c in cycles if c["kind"] == kind]
            wall = [c["wall"] * 1000 for c in mine]
            cpu = [c["cpu"] * 1000 for c in mine]
            outside = [(c["cpu"] - c["calls_cpu"]) * 1000 for c in mine]
            inside = [c["calls_wall"] * 1000 for c in mine]
            # the target is the CPU a cycle costs outside its SparkBot calls
            verdict = "met" if max(wall) <= settings.MONITOR_CYCLE_SECONDS * 1000 \
                and statistics.median(outside) <= TARGET_CYCLE_CPU_MS else "MISSED"
            print(f"  monitor cycle, {kind} ({len(mine)} runs): wall ms {summary_line(wall)} "
                  f"(MONITOR_CYCLE_SECONDS {settings.MONITOR_CYCLE_SECONDS * 1000:.0f} ms, MONITOR_DEVICES_SECONDS "
                  f"{settings.MONITOR_DEVICES_SECONDS * 1000:.0f} ms); "
                  f"inside SparkBot calls ms {summary_line(inside)}; "
                  f"CPU ms {summary_line(cpu)}, outside the calls {summary_line(outside)}: {verdict} "
                  f"(target: inside its interval, median CPU outside the calls <= {TARGET_CYCLE_CPU_MS} ms)")
    finally:
        if test_db and not args.keepdb:
            connection.creation.destroy_test_db(test_db, verbosity=0)


if __name__ == "__main__":
    main()
