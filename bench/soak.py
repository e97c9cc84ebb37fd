#!/usr/bin/env python
"""Chaos soak: thousands of reroutes under random faults, and every one must end truthfully.

    # the full soak (docs/RELIABILITY.md): 10,000 reroutes, 4 workers, every fault below
    .venv/bin/python bench/soak.py
    # the short soak that `make test-production` runs (tests/test_soak.py), about a minute
    .venv/bin/python bench/soak.py --short
    # scale-out (docs/PERFORMANCE.md): no faults, 50 ms per SparkBot call, 1, 2 and 4 worker processes
    .venv/bin/python bench/soak.py --no-faults --latency-ms 50 --reroutes 2000 --handover-plans 0 \
        --pool prefork --workers 1   # then --workers 2, then --workers 4

Everything it uses is private to the run, whatever DATABASE_URL and REDIS_URL say: a
PostgreSQL cluster made with initdb in a temporary folder and migrated with `manage.py
migrate`, a redis-server (broker and cache), the sandbox in its own process, and Celery
worker processes, prefork and threads pools mixed, two of them with beat (the sweeper and
the handover tick). This process submits the reroutes through `services.reroute_request`,
one active reroute per source at most, refilling each source's queue in the sandbox before
its reroute, and keeps a few handover plans running over other sources.

Faults (unless --no-faults): the sandbox fails a share of the calls at random (500, an HTML
502, 429 with Retry-After, a hang past the timeout, a route call carried out whose answer
is lost, and, one fault in 21, an answer trickled for longer than the sweeper's silence
bound, no read ever waiting past the timeout); workers are SIGKILLed and restarted; Redis
is killed and restarted (its queues are lost: it keeps nothing on disk); PostgreSQL is
crashed (`pg_ctl stop -m immediate`) and restarted. At the end, faults off and everything
up, it waits (bounded) until every reroute and handover run has ended, then checks, from the
sandbox's own ledger of the routes it carried out and from the database:

- every reroute ended, exactly once (one ending event in its timeline);
- no source was routed twice for one reroute (ledger entries belong to the reroute of their
  source whose created_at..ended_at holds them: a source has one active reroute at a time);
- a succeeded reroute's messages_moved is what the sandbox moved for it, or None with an
  event saying why the count is unknown;
- a failed reroute moved nothing;
- every route the sandbox carried out belongs to some reroute;
- every handover run ended;
- a source paused by a handover got its queue status back (or an event says it did not);
- `manage.py verify_audit_log` passes.

It prints reroutes/s, the faults injected by kind, the kills and restarts, each invariant's
held / violated counts with examples, and exits 1 on any violation (3 when Python files
changed on disk during the run: restarted workers then ran other code). --json writes the same.
--plant-violations routes two sources by hand during their reroutes and one after every
reroute ended: the soak must then report them (the checker is tested, not trusted).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sparkbot_sandbox.seed import extra_devices  # noqa: E402
from sparkbot_sandbox.state import CHAOS_KINDS  # noqa: E402
from tests.support import (  # noqa: E402
    PostgresServer, RedisServer, SandboxProcess, Worker, free_port,
)

DATABASE = "sparkbot_soak"
USABLE = ("operative", "ready")
ENDINGS = ("succeeded", "failed")  # the statuses, and the kinds of the event that ends a reroute
QUEUE_STATUSES = ("active", "freeze", "reject", "pause")
# Words of an event that says why a count is unknown (today's and the fenced services' sentences).
UNKNOWN_COUNT_REASON = re.compile(r"could not be (read|confirmed|counted)|not confirmed|not known|unknown|did not say|"
                                  r"did not report", re.IGNORECASE)
STATUS_NOT_RESTORED = re.compile(r"still paused|could not be set back|not set back|Set it back", re.IGNORECASE)
INVARIANTS = {
    "ended": "every reroute ended",
    "ended_once": "every reroute ended exactly once (one ending event)",
    "routed_once": "no source routed twice for one reroute",
    "count": "a succeeded reroute's count is what the sandbox moved (or unknown, with the reason)",
    "failed_moved_nothing": "a failed reroute moved nothing",
    "routes_accounted": "every route the sandbox carried out belongs to a reroute",
    "runs_ended": "every handover run ended",
    "status_restored": "a source paused by a handover got its queue status back (or an event says not)",
    "audit_log": "manage.py verify_audit_log passes",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# Options --------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reroutes", type=int, help="reroutes to submit (default 10,000; --short: 300)")
    parser.add_argument("--short", action="store_true",
                        help="a few hundred reroutes, two workers, one kill, one Redis and one PostgreSQL restart")
    parser.add_argument("--no-faults", action="store_true", help="no chaos, no kills, no restarts (scale-out)")
    parser.add_argument("--workers", type=int, help="worker processes (default 4; --short: 2)")
    parser.add_argument("--pool", choices=("mixed", "prefork", "threads"), default="mixed",
                        help="mixed: even-numbered workers prefork, odd-numbered threads")
    parser.add_argument("--concurrency", type=int, default=4, help="pool size of each worker")
    parser.add_argument("--sources", type=int, help="devices that reroutes move from (default 200; --short: 60)")
    parser.add_argument("--in-flight", type=int, help="active reroutes at most (default 3 x all pool slots)")
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every SparkBot call")
    parser.add_argument("--chaos-rate", type=float, default=0.1, help="share of SparkBot calls that fail")
    parser.add_argument("--chaos-kinds", help="comma-separated, a kind repeated is picked more often "
                        "(default: each kind of sparkbot_sandbox.state.CHAOS_KINDS 4 times, slow_answer once)")
    parser.add_argument("--kills", type=int, help="worker SIGKILLs (default reroutes / 500; --short: 1)")
    parser.add_argument("--redis-restarts", type=int, help="default reroutes / 2,500, at least 1")
    parser.add_argument("--postgres-restarts", type=int, help="default reroutes / 2,500, at least 1")
    parser.add_argument("--handover-plans", type=int, default=3)
    parser.add_argument("--handover-pairs", type=int, default=4, help="pairs in each handover plan")
    parser.add_argument("--timeout", type=float, default=1.0, help="SPARKBOT_TIMEOUT of every process")
    parser.add_argument("--drain-seconds", type=float, help="how long the end may take (default from the settings)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plant-violations", action="store_true",
                        help="route sources by hand behind the reroutes' backs: the soak must report them")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--keep", action="store_true", help="keep the logs folder even when all holds")
    parser.add_argument("--logs", type=Path, help="write the logs here and keep them (default: a temporary "
                        "folder, deleted when all holds)")
    args = parser.parse_args(argv)
    short = args.short
    args.reroutes = args.reroutes or (300 if short else 10_000)
    args.workers = args.workers or (2 if short else 4)
    args.sources = args.sources or (60 if short else 200)
    faults = not args.no_faults
    args.kills = _default(args.kills, faults, 1 if short else args.reroutes // 500)
    args.redis_restarts = _default(args.redis_restarts, faults, 1 if short else max(1, args.reroutes // 2500))
    args.postgres_restarts = _default(args.postgres_restarts, faults, 1 if short else max(1, args.reroutes // 2500))
    args.slots = args.workers * args.concurrency
    args.in_flight = min(args.in_flight or 3 * args.slots, args.sources)
    if args.workers < 1 or args.reroutes < 1 or args.sources < 2:
        parser.error("--workers, --reroutes and --sources must be positive (sources at least 2)")
    return args


def _default(value, faults: bool, default: int) -> int:
    if value is not None:
        return value
    return default if faults else 0


def worker_settings(args) -> dict:
    """Short limits so that retries and recovery play out in seconds (as queues/tests/test_faults.py)."""
    settings = {
        "SPARKBOT_TIMEOUT": f"{args.timeout:g}",
        "SPARKBOT_MAX_ATTEMPTS": "4",
        "SPARKBOT_RETRY_BASE_SECONDS": "0.05",
        "SPARKBOT_RETRY_MAX_SECONDS": "1",
        "REROUTE_REQUEUE_AFTER_SECONDS": "5",
        "REROUTE_SWEEP_SECONDS": "1",
        "HANDOVER_TICK_SECONDS": "1",
        "HANDOVER_CONCURRENCY": "4",
        "PYTHONUNBUFFERED": "1",
    }
    settings["REROUTE_STUCK_AFTER_SECONDS"] = str(least_stuck_after(settings))
    return settings


def least_stuck_after(settings: dict) -> int:
    """The least REROUTE_STUCK_AFTER_SECONDS that the settings accept with these limits (asked of them)."""
    probe = [sys.executable, "-c", "from django.conf import settings; settings.SECRET_KEY"]
    env = {**os.environ, **settings, "REROUTE_STUCK_AFTER_SECONDS": "10"}
    result = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return 10
    found = re.search(r"REROUTE_STUCK_AFTER_SECONDS must be at least ([0-9.]+)", result.stderr)
    if not found:
        raise RuntimeError(f"the settings refuse the soak's limits:\n{result.stderr[-2000:]}")
    return math.ceil(float(found.group(1)))


# CPU, read from /proc -------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its children it has waited for)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / CLOCK_TICKS)
    return table


def tree_cpu_seconds(pids: list[int], table: dict | None = None) -> float:
    """CPU seconds used so far by these processes and all their descendants, living or reaped."""
    table = table or _process_table()
    children = defaultdict(list)
    for pid, (parent, _cpu) in table.items():
        children[parent].append(pid)
    seen, todo = set(), [pid for pid in pids if pid in table]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children[pid])
    return sum(table[pid][1] for pid in seen)


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


# The private servers and the workers --------------------------------------------------------


@dataclass
class Rig:
    """Everything the soak runs and may break: PostgreSQL, Redis, the sandbox, the workers."""

    folder: Path
    postgres: PostgresServer
    redis: RedisServer
    sandbox: SandboxProcess
    workers: list[Worker] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)

    def everything_up(self) -> None:
        if not self.postgres.is_up():
            self.postgres.start()
        if not self.redis.is_up():
            self.redis.start()
        for worker in self.workers:
            if worker.process is None or worker.process.poll() is not None:
                worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.redis is not None and self.redis.process is not None and self.redis.process.poll() is None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.remove()


def rig_up(args, folder: Path) -> Rig:
    rig = Rig(folder, None, None, None, settings=worker_settings(args))
    try:
        _start_rig(rig, args)
    except BaseException:
        rig.stop()
        raise
    return rig


def _start_rig(rig: Rig, args) -> None:
    rig.postgres = PostgresServer(free_port())
    rig.postgres.init()
    rig.postgres.start()
    rig.postgres.create_database(DATABASE)
    rig.redis = RedisServer(free_port(), rig.folder / "redis.log")
    rig.redis.start()
    rig.sandbox = SandboxProcess(extra_devices=needed_devices(args), latency_ms=args.latency_ms)
    rig.env = {**os.environ, **rig.settings, "DATABASE_URL": rig.postgres.url(DATABASE),
               "REDIS_URL": f"redis://127.0.0.1:{rig.redis.port}/0", "SPARKBOT_API_URL": rig.sandbox.api_url}
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                             env=rig.env, capture_output=True, text=True)
    if migrate.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{migrate.stdout[-2000:]}{migrate.stderr[-3000:]}")
    beats = 2 if not args.no_faults else 1
    for n in range(args.workers):
        pool = args.pool if args.pool != "mixed" else ("prefork", "threads")[n % 2]
        rig.workers.append(Worker(rig.env, rig.folder / f"worker-{n}.log", concurrency=args.concurrency,
                                  beat=n < beats, pool=pool, hostname=f"soak-{n}@%h"))
    for worker in rig.workers:
        worker.start(timeout=60)


def needed_devices(args) -> int:
    """Extra sandbox devices enough for the sources, targets and handover pairs (9 in 10 are usable)."""
    wanted = args.sources + 8 + args.handover_plans * args.handover_pairs + 4
    return min(9999, math.ceil(wanted * 10 / 9) + 20)


@dataclass
class Numbers:
    sources: list
    targets: list
    handover_sources: list
    handover_targets: list


def numbers(args) -> Numbers:
    from queues.sparkbot import Device

    devices, _queues = extra_devices(needed_devices(args))
    usable = [Device(id=d["id"], alias=d["alias"], phone=d["phone"], status=d["status"],
                     session_status=d["session"]["status"]) for d in devices if d["status"] in USABLE]
    pairs = args.handover_plans * args.handover_pairs
    sources, rest = usable[:args.sources], usable[args.sources:]
    return Numbers(sources=sources, targets=rest[:8], handover_sources=rest[8:8 + pairs],
                   handover_targets=rest[8 + pairs:12 + pairs])


# Faults: kills and restarts, one at a time, at random points of the run ------------------------


class Disruptions(threading.Thread):
    """Kills workers and restarts Redis and PostgreSQL when the run reaches the planned points; and,
    as a supervisor (compose's `restart: unless-stopped`) would, restarts a worker that exits by itself."""

    def __init__(self, rig: Rig, args, progress):
        super().__init__(name="disruptions", daemon=True)
        self.rig, self.progress, self.random = rig, progress, random.Random(args.seed + 1)
        actions = ["kill"] * args.kills + ["redis"] * args.redis_restarts + ["postgres"] * args.postgres_restarts
        self.random.shuffle(actions)
        points = sorted(self.random.randint(int(args.reroutes * 0.1), int(args.reroutes * 0.85))
                        for _ in actions)
        self.plan = deque(zip(points, actions))
        self.done = Counter()
        self.problems, self.exits = [], []
        self.lock = threading.Lock()  # one change to the rig at a time, the end phase's included
        self.faults_over, self.stopping = threading.Event(), threading.Event()

    def run(self) -> None:
        next_check = 0.0
        while not self.stopping.wait(0.05):
            if time.monotonic() >= next_check:
                with self.lock:
                    self._supervise()
                next_check = time.monotonic() + 1
            if self.plan and not self.faults_over.is_set() and self.progress() >= self.plan[0][0]:
                point, action = self.plan.popleft()
                with self.lock:
                    self._act(action, point)

    def _act(self, action: str, point: int) -> None:
        try:
            getattr(self, f"_{action}")(point)
            self.done[action] += 1
        except Exception as error:  # the end phase brings everything up again
            self.problems.append(f"{action} at reroute {point}: {type(error).__name__}: {error}")
            log(f"disruption {action} failed: {error}")

    def _supervise(self) -> None:
        for n, worker in enumerate(self.rig.workers):
            if worker.process is None or worker.process.poll() is None:
                continue
            fatal = [line for line in worker.log_path.read_text(errors="replace").splitlines()
                     if "Unrecoverable error" in line]
            why = fatal[-1].split("CRITICAL", 1)[-1].strip() if fatal else "no error in its log"
            self.exits.append(f"worker {n} ({worker.pool}) exited with code {worker.process.returncode}: {why}")
            self.done["exited by itself"] += 1
            log(f"worker {n} ({worker.pool}) exited by itself ({why}); restarting it, as a supervisor would")
            worker.log.close()
            try:
                worker.start(timeout=60)
            except RuntimeError as error:
                self.problems.append(f"restarting worker {n}: {error}"[:500])

    def _down_for(self) -> float:
        return self.random.uniform(0.3, 2.0)

    def _kill(self, point: int) -> None:
        n = self.random.randrange(len(self.rig.workers))
        worker = self.rig.workers[n]
        log(f"SIGKILL worker {n} ({worker.pool}{', beat' if worker.beat else ''}) at reroute {point}")
        worker.kill()
        time.sleep(self._down_for())
        worker.start(timeout=60)

    def _redis(self, point: int) -> None:
        log(f"killing Redis at reroute {point} (its queues and cache are lost)")
        self.rig.redis.stop()
        time.sleep(self._down_for())
        self.rig.redis.start()

    def _postgres(self, point: int) -> None:
        log(f"crashing PostgreSQL (-m immediate) at reroute {point}")
        self.rig.postgres.crash()
        time.sleep(self._down_for())
        self.rig.postgres.start()


# This process's database work survives PostgreSQL restarts ------------------------------------


def with_database(action, *, timeout: float = 120):
    """Run action(); on a lost connection close it and try again (PostgreSQL restarting)."""
    from django.db import InterfaceError, OperationalError, connection

    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except (OperationalError, InterfaceError):
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def refill(sandbox, source_id: str, rng: random.Random, status: str | None = None) -> int:
    counts = {"pending": rng.randint(1, 40), "processing": rng.randint(0, 3), "scheduled": rng.randint(0, 2)}
    sandbox.set_queue(source_id, **counts, **({"status": status} if status else {}))
    return sum(counts.values())


def submit(source, target, note: str = "soak"):
    """reroute_request with one idempotency key across retries: a submit cut by a crash is not doubled."""
    from queues import services
    from queues.models import Reroute

    key = uuid.uuid4()
    return with_database(lambda: services.reroute_request(
        source=source, target=target, note=note, user=None, username="soak", origin=Reroute.Origin.CLI,
        idempotency_key=key))


# Handover runs going on during the soak -----------------------------------------------------


@dataclass
class PlanDriver:
    """One plan: start a run, retry its failed moves once, check its sources' queue status, again."""

    plan_id: int
    sources: list
    pause: bool
    run_id: int | None = None
    retried: bool = False
    statuses: dict = field(default_factory=dict)
    runs: int = 0
    last_run_before_refill: int = 0


class Handovers:
    def __init__(self, numbers_: Numbers, args, sandbox, rng: random.Random):
        from queues import handovers
        from queues.models import HandoverPlan

        self.sandbox, self.rng, self.drivers = sandbox, rng, []
        self.refused = Counter()
        self.status_checks = []  # (run id, source id, wanted, found)
        per_plan = args.handover_pairs
        for n in range(args.handover_plans):
            sources = numbers_.handover_sources[n * per_plan:(n + 1) * per_plan]
            pairs = [(s.id, numbers_.handover_targets[i % len(numbers_.handover_targets)].id)
                     for i, s in enumerate(sources)]
            plan = HandoverPlan(name=f"Soak plan {n + 1}", pause_sources=n % 3 == 0, in_order=n % 3 == 2)
            plan = with_database(lambda plan=plan, pairs=pairs: handovers.plan_save(plan=plan, pairs=pairs, user=None))
            self.drivers.append(PlanDriver(plan.pk, [s.id for s in sources], plan.pause_sources))
        self.next_step = 0.0

    def step(self, *, may_start: bool) -> None:
        if time.monotonic() < self.next_step:
            return
        self.next_step = time.monotonic() + 0.5
        for driver in self.drivers:
            try:
                with_database(lambda driver=driver: self._advance(driver, may_start), timeout=5)
            except Exception as error:  # device list unavailable, run in progress, database away: next step
                self.refused[type(error).__name__] += 1

    def _advance(self, driver: PlanDriver, may_start: bool) -> None:
        from queues import handovers
        from queues.models import HandoverPlan, HandoverRun

        if driver.run_id is not None:
            run = HandoverRun.objects.get(pk=driver.run_id)
            if run.ended_at is None:
                return
            if not driver.retried and may_start:
                driver.retried = True
                if handovers.handover_retry_failed(run=run):
                    return
            self._check_statuses(driver)
            driver.run_id = None
        if not may_start:
            return
        if not driver.statuses:
            driver.last_run_before_refill = max(
                HandoverRun.objects.filter(plan_id=driver.plan_id).values_list("pk", flat=True), default=0)
            for source in driver.sources:
                status = self.rng.choice(QUEUE_STATUSES) if driver.pause else None
                refill(self.sandbox, source, self.rng, status)
                driver.statuses[source] = status
        else:
            # A start that raised (its connection lost after the commit, say) may have started the run
            # all the same: that run is the one these queues were filled for.
            started = HandoverRun.objects.filter(plan_id=driver.plan_id, pk__gt=driver.last_run_before_refill)
            if started.exists():
                driver.run_id, driver.retried, driver.runs = started.earliest("pk").pk, False, driver.runs + 1
                return
        run = handovers.handover_start(plan=HandoverPlan.objects.get(pk=driver.plan_id), user=None)
        driver.run_id, driver.retried, driver.runs = run.pk, False, driver.runs + 1

    def _check_statuses(self, driver: PlanDriver) -> None:
        if driver.pause:
            queues = {d["id"]: d["queue"] for d in self.sandbox.control("GET", "/devices")["devices"]}
            for source, wanted in driver.statuses.items():
                self.status_checks.append((driver.run_id, source, wanted, queues[source]["status"]))
        driver.statuses = {}

    def busy(self) -> bool:
        return any(driver.run_id is not None for driver in self.drivers)


# Submitting and draining --------------------------------------------------------------------


class Soak:
    def __init__(self, rig: Rig, args, numbers_: Numbers):
        self.rig, self.args, self.numbers = rig, args, numbers_
        self.rng = random.Random(args.seed)
        self.free = deque(numbers_.sources)
        self.active: dict[int, object] = {}  # reroute id -> source device
        self.submitted = 0
        self.planted: dict[str, list[int]] = defaultdict(list)
        self.last_progress = time.monotonic()

    def fill(self) -> None:
        while self.submitted < self.args.reroutes and self.free and len(self.active) < self.args.in_flight:
            source = self.free.popleft()
            refill(self.rig.sandbox, source.id, self.rng)
            reroute = submit(source, self.rng.choice(self.numbers.targets))
            self.active[reroute.pk] = source
            self.submitted += 1
            if self.submitted % 500 == 0:
                log(f"{self.submitted} reroutes submitted, {len(self.active)} active")
                self.rig.sandbox.clear_calls()  # the call record only grows: keep the sandbox's memory flat

    def collect(self) -> int:
        from queues.models import Reroute

        ids = list(self.active)
        if not ids:
            return 0
        ended = with_database(lambda: list(Reroute.objects.filter(pk__in=ids, status__in=Reroute.ENDED)
                                           .values_list("pk", flat=True)))
        for pk in ended:
            self.free.append(self.active.pop(pk))
        if ended:
            self.last_progress = time.monotonic()
        return len(ended)

    def plant_during(self) -> None:
        """Two reroutes whose source is routed by hand while their worker's first reading hangs."""
        sandbox, (first, second) = self.rig.sandbox, self.numbers.sources[:2]
        target, other = self.numbers.targets[:2]
        planted = []
        for source, kind in ((first, "routed_twice"), (second, "failed_but_moved")):
            sandbox.fault(route="queue_get", device=source.id, hang_seconds=0.6)  # then it answers
            sandbox.set_queue(source.id, pending=10, processing=0, scheduled=0)
            planted.append((source, kind, submit(source, target, note="planted")))
        time.sleep(0.2)
        for source, kind, reroute in planted:
            response = sandbox.route_by_hand(source.id, other.id)
            assert response.status_code == 200, response.text
            sandbox.set_queue(source.id, pending=7, processing=0, scheduled=0)
            if kind == "failed_but_moved":  # its own route call is refused: it fails, yet 10 moved in its time
                sandbox.fault(route="route_queue", device=source.id, status=409)
            self.planted[kind].append(reroute.pk)
            log(f"planted: reroute #{reroute.pk} of {source.alias}, {kind.replace('_', ' ')}")
        for source, _kind, reroute in planted:
            self.free.remove(source)
            self.active[reroute.pk] = source

    def plant_after(self) -> None:
        source, target = self.numbers.sources[2], self.numbers.targets[1]
        self.rig.sandbox.set_queue(source.id, pending=5, processing=0, scheduled=0)
        self.rig.sandbox.route_by_hand(source.id, target.id)
        self.planted["orphan_route"].append(source.id)
        log(f"planted: a route of {source.alias} after every reroute had ended")


def unfinished() -> tuple[int, int]:
    from queues.models import HandoverRun, Reroute

    return with_database(lambda: (Reroute.objects.filter(status__in=Reroute.ACTIVE).count(),
                                  HandoverRun.objects.filter(ended_at__isnull=True).count()))


def drain_bound(args, env: dict) -> float:
    if args.drain_seconds:
        return args.drain_seconds
    stuck = float(env["REROUTE_STUCK_AFTER_SECONDS"])
    return 60 + (int(env["SPARKBOT_MAX_ATTEMPTS"]) + 1) * (stuck + 2)


def run_soak(rig: Rig, args) -> dict:
    from django.db import connection

    from queues.models import Reroute

    numbers_ = numbers(args)
    soak = Soak(rig, args, numbers_)
    handover_driver = Handovers(numbers_, args, rig.sandbox, random.Random(args.seed + 2))
    if args.plant_violations:
        soak.plant_during()
    faults = not args.no_faults
    slow_seconds = float(rig.env["REROUTE_STUCK_AFTER_SECONDS"]) + 3  # outlasts the silence bound
    if faults:
        kinds = (args.chaos_kinds.split(",") if args.chaos_kinds
                 else [kind for kind in CHAOS_KINDS if kind != "slow_answer"] * 4 + ["slow_answer"])
        rig.sandbox.chaos(rate=args.chaos_rate, seed=args.seed, kinds=kinds, hang_seconds=args.timeout + 0.5,
                          retry_after=1, slow_seconds=slow_seconds)
    disruptions = Disruptions(rig, args, lambda: soak.submitted)
    code_before = code_fingerprint()
    cpu_before = cpu_sample(rig)
    commits_before = with_database(database_counters)
    started = time.monotonic()
    disruptions.start()
    stall_bound = drain_bound(args, rig.env)
    while soak.submitted < args.reroutes:
        soak.fill()
        handover_driver.step(may_start=True)
        if not soak.collect():
            time.sleep(0.01)
        if time.monotonic() - soak.last_progress > stall_bound:
            log(f"no reroute ended for {stall_bound:.0f} s: stopping submissions at {soak.submitted}")
            break
    submitting = time.monotonic() - started
    log(f"all {soak.submitted} reroutes submitted in {submitting:.1f} s; ending the faults")
    disruptions.faults_over.set()
    chaos = rig.sandbox.chaos_stop() if faults else rig.sandbox.chaos_report()
    late_writes_until = time.monotonic() + (slow_seconds + 2 if faults else 0)
    with disruptions.lock:
        rig.everything_up()
    drained = drain(soak, handover_driver, drain_bound(args, rig.env))
    wall = time.monotonic() - started
    cpu_after = cpu_sample(rig)
    time.sleep(1.2)  # PostgreSQL publishes its counters about once a second
    commits_after = with_database(database_counters)
    # An attempt still inside a slow call when the faults ended writes once it returns, if ever.
    time.sleep(max(2.0, 2 * args.timeout, late_writes_until - time.monotonic()))
    if args.plant_violations:
        soak.plant_after()
    disruptions.stopping.set()
    disruptions.join()
    for worker in rig.workers:
        worker.stop()
    connection.close()
    summary = {
        "mode": "no faults" if args.no_faults else "chaos",
        "reroutes_submitted": soak.submitted,
        "drained": drained,
        "wall_seconds": round(wall, 2),
        "submit_seconds": round(submitting, 2),
        "faults_injected": chaos["injected"] if faults else {},
        "faults_by_route": chaos["by_route"] if faults else {},
        "sandbox_calls_under_chaos": chaos["calls"],
        "disruptions": dict(disruptions.done),
        "disruption_problems": disruptions.problems,
        "worker_exits": disruptions.exits,
        "code_changed_during_run": code_fingerprint() != code_before,
        "handover_runs_started": sum(d.runs for d in handover_driver.drivers),
        "handover_start_refused": dict(handover_driver.refused),
        "planted": dict(soak.planted),
        "settings": {name: rig.env[name] for name in worker_settings_names()},
        "workers": [f"{w.pool} x{w.concurrency}{' +beat' if w.beat else ''}" for w in rig.workers],
    }
    summary.update(with_database(lambda: throughput(Reroute)))
    summary["events"] = with_database(event_counts)
    summary["resources"] = resources(cpu_before, cpu_after, commits_before, commits_after, wall, summary)
    summary["invariants"] = check_everything(rig, handover_driver)
    summary["ok"] = all(v["violated"] == 0 for v in summary["invariants"].values())
    return summary


def code_fingerprint() -> list:
    """What the workers run: a worker restarted after the code changed on disk runs other code."""
    files = sorted(path for folder in ("queues", "sparkbot_dash", "sparkbot_sandbox") for path in
                   (ROOT / folder).rglob("*.py"))
    return [(str(path.relative_to(ROOT)), path.stat().st_mtime_ns, path.stat().st_size) for path in files]


def worker_settings_names() -> list[str]:
    return ["SPARKBOT_TIMEOUT", "SPARKBOT_MAX_ATTEMPTS", "SPARKBOT_RETRY_BASE_SECONDS", "SPARKBOT_RETRY_MAX_SECONDS",
            "REROUTE_STUCK_AFTER_SECONDS", "REROUTE_REQUEUE_AFTER_SECONDS", "REROUTE_SWEEP_SECONDS"]


def drain(soak: Soak, handover_driver: Handovers, bound: float) -> bool:
    """Wait until every reroute and handover run has ended; False when the bound passed first."""
    deadline = time.monotonic() + bound
    log(f"waiting up to {bound:.0f} s for every reroute and handover run to end")
    while time.monotonic() < deadline:
        soak.collect()
        handover_driver.step(may_start=False)
        reroutes, runs = unfinished()
        if not reroutes and not runs and not soak.active and not handover_driver.busy():
            return True
        time.sleep(0.2)
    reroutes, runs = unfinished()
    log(f"gave up waiting: {reroutes} reroutes and {runs} handover runs have not ended")
    return False


def throughput(Reroute) -> dict:
    rows = list(Reroute.objects.filter(ended_at__isnull=False, started_at__isnull=False)
                .values_list("created_at", "started_at", "ended_at", "sparkbot_seconds"))
    if not rows:
        return {"reroutes_ended": 0, "reroutes_per_second": 0.0}
    first = min(row[0] for row in rows)
    last = max(row[2] for row in rows)
    span = max((last - first).total_seconds(), 1e-6)
    runs = [(ended - started).total_seconds() for _c, started, ended, _s in rows]
    waiting = [(started - created).total_seconds() for created, started, _e, _s in rows]
    mean_ms = lambda values: round(1000 * sum(values) / len(values), 1)  # noqa: E731
    return {"reroutes_ended": len(rows), "reroutes_per_second": round(len(rows) / span, 2),
            "mean_running_at_once": round(sum(runs) / span, 2), "mean_wait_for_a_worker_ms": mean_ms(waiting),
            "mean_run_ms": mean_ms(runs), "mean_sparkbot_ms": mean_ms([row[3] for row in rows])}


def event_counts() -> dict:
    from django.db.models import Count

    from queues.models import RerouteEvent

    return dict(RerouteEvent.objects.values_list("kind").annotate(n=Count("id")).order_by("kind"))


# Resources: what bounds the throughput ------------------------------------------------------


def cpu_sample(rig: Rig) -> dict:
    table = _process_table()
    busy, total = machine_busy()
    worker_pids = [w.process.pid for w in rig.workers if w.process is not None and w.process.poll() is None]
    return {"workers": tree_cpu_seconds(worker_pids, table),
            "postgres": tree_cpu_seconds([rig.postgres.pid() or -1], table),
            "redis": tree_cpu_seconds([rig.redis.process.pid], table),
            "sandbox": tree_cpu_seconds([rig.sandbox.pid], table),
            "soak (this process)": own_cpu_seconds(),
            "machine busy": busy, "machine total": total}


def database_counters() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        commits = cursor.fetchone()[0]
        cursor.execute("SELECT wal_records, wal_sync FROM pg_stat_wal")
        wal_records, wal_syncs = cursor.fetchone()
    return {"commits": commits, "wal_records": wal_records, "wal_syncs": wal_syncs}


def resources(before: dict, after: dict, db_before: dict, db_after: dict, wall: float, summary: dict) -> dict:
    cores = os.cpu_count() or 1
    cpu = {name: round((after[name] - before[name]) / wall, 2)
           for name in ("workers", "postgres", "redis", "sandbox", "soak (this process)")}
    machine = (after["machine busy"] - before["machine busy"]) / max(after["machine total"] - before["machine total"],
                                                                      1e-6)
    ended = max(summary.get("reroutes_ended", 0), 1)
    database = {name: db_after[name] - db_before[name] for name in db_before}
    cpu_ms = {name: round(1000 * (after[name] - before[name]) / ended, 1)
              for name in ("workers", "postgres", "redis", "sandbox", "soak (this process)")}
    return {"cores": cores, "cpu_cores_used": cpu, "cpu_ms_per_reroute": cpu_ms,
            "machine_busy_share": round(machine, 3),
            "other_processes_cores": round(max(0.0, machine * cores - sum(cpu.values())), 2),
            "commits_per_second": round(database["commits"] / wall, 1),
            "commits_per_reroute": round(database["commits"] / ended, 1),
            "wal_syncs_per_second": round(database["wal_syncs"] / wall, 1),
            "wal_syncs_per_reroute": round(database["wal_syncs"] / ended, 2),
            "note": "not printed: kills lose CPU counts, a crash resets PostgreSQL's statistics"
            if summary["mode"] == "chaos" else ""}


def bound_verdict(summary: dict, args) -> str:
    res, slots = summary["resources"], args.slots
    running = summary.get("mean_running_at_once", 0)
    if res["machine_busy_share"] >= 0.9:
        top = sorted(res["cpu_cores_used"].items(), key=lambda item: -item[1])[:3]
        users = ", ".join(f"{name} {cores:.2f}" for name, cores in top)
        product_ms = res["cpu_ms_per_reroute"]["workers"] + res["cpu_ms_per_reroute"]["postgres"]
        return (f"CPU: the machine was {res['machine_busy_share']:.0%} busy on {res['cores']} cores ({users} cores); "
                f"a reroute costs {product_ms:.0f} ms of CPU in the workers and PostgreSQL, so {res['cores']} cores "
                f"give at most {res['cores'] * 1000 / product_ms:.0f} reroutes/s")
    if running >= 0.75 * slots:
        run_ms, sparkbot_ms = summary["mean_run_ms"], summary["mean_sparkbot_ms"]
        return (f"worker slots: {running:.1f} of {slots} busy on average; a reroute holds its slot {run_ms:.0f} ms, "
                f"{sparkbot_ms:.0f} ms of it inside SparkBot calls, so {slots} slots give at most "
                f"{slots * 1000 / run_ms:.1f} reroutes/s (SparkBot time alone: {slots * 1000 / sparkbot_ms:.1f})")
    if running >= 0.8 * args.in_flight:
        return f"the submitter: {running:.1f} of {args.in_flight} reroutes allowed in flight were running"
    return (f"none saturated: {running:.1f} of {slots} slots busy, machine {res['machine_busy_share']:.0%} busy; "
            f"look at the per-reroute wait ({summary.get('mean_wait_for_a_worker_ms')} ms) and commits")


# Invariants -----------------------------------------------------------------------------------


@dataclass
class Verdict:
    held: int = 0
    violated: int = 0
    examples: list = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    def hold(self) -> None:
        self.held += 1

    def violate(self, example: str) -> None:
        self.violated += 1
        if len(self.examples) < 8:
            self.examples.append(example)


def routes_by_reroute(reroutes: list[dict], ledger: list[dict]) -> tuple[dict, list]:
    """Ledger entries grouped by the reroute whose created..ended window of their source holds them;
    and the entries no reroute holds."""
    by_source = defaultdict(list)
    for reroute in sorted(reroutes, key=lambda r: r["created"]):
        by_source[reroute["source_id"]].append(reroute)
    starts = {source: [r["created"] for r in rows] for source, rows in by_source.items()}
    grouped, orphans = defaultdict(list), []
    for entry in ledger:
        rows = by_source.get(entry["source"], [])
        n = bisect.bisect_right(starts.get(entry["source"], []), entry["at"]) - 1
        if n >= 0 and (rows[n]["ended"] is None or entry["at"] <= rows[n]["ended"]):
            grouped[rows[n]["id"]].append(entry)
        else:
            orphans.append(entry)
    return grouped, orphans


def check_invariants(reroutes: list[dict], ledger: list[dict], runs: list[dict], audit: tuple[bool, str],
                     status_checks: list[tuple] = ()) -> dict[str, Verdict]:
    """The soak's verdict. reroutes: dicts of id, source_id, status, created, ended (epoch seconds or
    None), messages_moved, events [(kind, message)]; ledger: the sandbox's /_sandbox/routes; runs: dicts
    of id, ended (bool); audit: (passed, output); status_checks: (run id, source, wanted, found)."""
    verdicts = {name: Verdict() for name in INVARIANTS}
    grouped, orphans = routes_by_reroute(reroutes, ledger)
    for reroute in reroutes:
        entries = grouped.get(reroute["id"], [])
        moved = sum(entry["moved"] for entry in entries)
        routed = [entry["moved"] for entry in entries if entry["moved"] > 0]
        if reroute["status"] in ENDINGS:
            verdicts["ended"].hold()
        else:
            verdicts["ended"].violate(describe(reroute, f"still {reroute['status']}"))
        endings = [kind for kind, _message in reroute["events"] if kind in ENDINGS]
        if len(endings) == 1 or (not endings and reroute["status"] not in ENDINGS):
            verdicts["ended_once"].hold()
        else:
            verdicts["ended_once"].violate(describe(reroute, f"its timeline ends {len(endings)} times: {endings}"))
        if len(routed) <= 1:
            verdicts["routed_once"].hold()
        else:
            verdicts["routed_once"].violate(describe(reroute, f"the sandbox routed its source {len(routed)} times, "
                                                              f"moving {routed}"))
        if reroute["status"] == "succeeded":
            check_count(verdicts["count"], reroute, moved)
        elif reroute["status"] == "failed":
            if moved == 0:
                verdicts["failed_moved_nothing"].hold()
            else:
                verdicts["failed_moved_nothing"].violate(describe(reroute, f"failed, yet the sandbox moved {moved}"))
    verdicts["routes_accounted"].held = sum(len(entries) for entries in grouped.values())
    for entry in orphans:
        verdicts["routes_accounted"].violate(f"the sandbox routed {entry['source']} to {entry['target']} "
                                             f"({entry['moved']} moved) at {entry['at']:.3f}, outside every "
                                             "reroute of that source")
    for run in runs:
        if run["ended"]:
            verdicts["runs_ended"].hold()
        else:
            verdicts["runs_ended"].violate(f"handover run #{run['id']} ({run['status']}) has not ended")
    check_statuses(verdicts["status_restored"], status_checks, reroutes)
    passed, output = audit
    if passed:
        verdicts["audit_log"].hold()
    else:
        verdicts["audit_log"].violate(output.strip()[-600:])
    return verdicts


def check_count(verdict: Verdict, reroute: dict, moved: int) -> None:
    if reroute["messages_moved"] == moved:
        verdict.hold()
        return
    reasons = [message for _kind, message in reroute["events"] if UNKNOWN_COUNT_REASON.search(message)]
    if reroute["messages_moved"] is None and reasons:
        verdict.hold()
        verdict.notes["unknown, with the reason"] = verdict.notes.get("unknown, with the reason", 0) + 1
        return
    verdict.violate(describe(reroute, f"records messages_moved={reroute['messages_moved']}, the sandbox moved "
                                      f"{moved}"))


def check_statuses(verdict: Verdict, status_checks, reroutes: list[dict]) -> None:
    by_source = defaultdict(list)
    for reroute in reroutes:
        by_source[reroute["source_id"]].append(reroute)
    for run_id, source, wanted, found in status_checks:
        if wanted == found:
            verdict.hold()
            continue
        ours = [r for r in by_source[source] if r.get("handover_run_id") == run_id]
        said = any(STATUS_NOT_RESTORED.search(message) for r in ours for _kind, message in r["events"])
        if said:
            verdict.hold()
            verdict.notes["not restored, with an event saying so"] = (
                verdict.notes.get("not restored, with an event saying so", 0) + 1)
        else:
            example = f"handover run #{run_id}: the queue of {source} was {wanted!r} before, {found!r} after"
            before = [r for r in by_source[source] if ours and r["id"] < ours[0]["id"]][-2:]
            verdict.violate(f"{example}; " + "; ".join(describe(r, "", whole=True) for r in [*before, *ours]))


def describe(reroute: dict, problem: str, *, whole: bool = False) -> str:
    timeline = " | ".join(f"{kind}: {message}" for kind, message in reroute["events"][0 if whole else -6:])
    head = f"reroute #{reroute['id']} ({reroute['status']}, {reroute.get('attempts', '?')} attempts)"
    return f"{head}: {problem}. Last events: {timeline}" if problem else f"{head}. Last events: {timeline}"


def check_everything(rig: Rig, handover_driver: Handovers) -> dict:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from queues.models import HandoverRun, Reroute, RerouteEvent

    rows = list(Reroute.objects.order_by("id").values(
        "id", "source_id", "status", "created_at", "ended_at", "messages_moved", "attempts", "handover_run_id"))
    events = defaultdict(list)
    for reroute_id, kind, message in RerouteEvent.objects.order_by("id").values_list("reroute_id", "kind", "message"):
        events[reroute_id].append((kind, message))
    reroutes = [{**row, "created": row["created_at"].timestamp(),
                 "ended": row["ended_at"].timestamp() if row["ended_at"] else None, "events": events[row["id"]]}
                for row in rows]
    runs = [{"id": pk, "status": status, "ended": ended is not None}
            for pk, status, ended in HandoverRun.objects.values_list("pk", "status", "ended_at")]
    output = _Output()
    try:
        call_command("verify_audit_log", stdout=output, stderr=output)
        audit = (True, output.text)
    except (CommandError, SystemExit) as error:
        audit = (False, f"{output.text}{error}")
    verdicts = check_invariants(reroutes, rig.sandbox.routes(), runs, audit, handover_driver.status_checks)
    return {name: {"invariant": INVARIANTS[name], "held": v.held, "violated": v.violated, "examples": v.examples,
                   "notes": v.notes} for name, v in verdicts.items()}


class _Output:
    def __init__(self):
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


# Report -------------------------------------------------------------------------------------


def report(summary: dict, args) -> None:
    print()
    print(f"== soak ({summary['mode']}): {summary['reroutes_submitted']} reroutes submitted, "
          f"{summary.get('reroutes_ended', 0)} ended; workers: {', '.join(summary['workers'])}")
    print(f"reroutes/s: {summary.get('reroutes_per_second', 0)} (first submit to last end); wall "
          f"{summary['wall_seconds']} s, submitting {summary['submit_seconds']} s; on average "
          f"{summary.get('mean_running_at_once', 0)} running at once; per reroute "
          f"{summary.get('mean_wait_for_a_worker_ms', 0)} ms waiting for a worker, then "
          f"{summary.get('mean_run_ms', 0)} ms running, {summary.get('mean_sparkbot_ms', 0)} ms of it in SparkBot "
          "calls")
    if summary["faults_injected"]:
        faults = ", ".join(f"{kind} {n}" for kind, n in summary["faults_injected"].items())
        print(f"sandbox faults injected: {faults} (of {summary['sandbox_calls_under_chaos']} calls); by route: "
              f"{summary['faults_by_route']}")
    disruptions = summary["disruptions"]
    print(f"kills: {disruptions.get('kill', 0)}; Redis restarts: {disruptions.get('redis', 0)}; PostgreSQL "
          f"restarts: {disruptions.get('postgres', 0)}; workers that exited by themselves (restarted): "
          f"{disruptions.get('exited by itself', 0)}" + (f"; problems: {summary['disruption_problems']}"
                                                          if summary["disruption_problems"] else ""))
    for exit_ in summary["worker_exits"][:5]:
        print(f"      {exit_[:300]}")
    print(f"handover runs started: {summary['handover_runs_started']}; starts refused: "
          f"{summary['handover_start_refused'] or 'none'}")
    print(f"events by kind: {summary['events']}")
    if summary["mode"] != "chaos":  # kills lose CPU counts and a crash resets PostgreSQL's statistics
        print_resources(summary["resources"])
    if args.no_faults:
        print(f"bounded by: {bound_verdict(summary, args)}")
    if not summary["drained"]:
        print("NOT DRAINED: some reroutes or runs were still going when the bound passed")
    print_invariants(summary)


def print_resources(res: dict) -> None:
    print(f"CPU (cores used on average): {res['cpu_cores_used']}; machine busy {res['machine_busy_share']:.0%} "
          f"of {res['cores']} cores, {res['other_processes_cores']} cores of it by processes outside the soak "
          f"{res['note']}")
    print(f"CPU per reroute (ms): {res['cpu_ms_per_reroute']}")
    print(f"PostgreSQL: {res['commits_per_second']} commits/s ({res['commits_per_reroute']} per reroute, "
          f"reads included), {res['wal_syncs_per_second']} WAL syncs/s ({res['wal_syncs_per_reroute']} per reroute)")


def print_invariants(summary: dict) -> None:
    print("invariants:")
    for name, verdict in summary["invariants"].items():
        mark = "held" if verdict["violated"] == 0 else "VIOLATED"
        notes = f" ({', '.join(f'{k}: {v}' for k, v in verdict['notes'].items())})" if verdict["notes"] else ""
        print(f"  [{mark}] {verdict['invariant']}: held {verdict['held']}, violated {verdict['violated']}{notes}")
        for example in verdict["examples"][:5]:
            print(f"      e.g. {example[:900]}")
    print("ALL INVARIANTS HELD" if summary["ok"] else "SOME INVARIANTS WERE VIOLATED")
    if summary["code_changed_during_run"]:
        print("INVALID RUN: Python files changed on disk during the soak, so restarted workers ran other code. "
              "Run it on a tree nobody edits (e.g. git archive HEAD | tar -x -C /tmp/soak-tree).")


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")
    os.environ.setdefault("SECRET_KEY", "insecure-key-for-benchmarks-only")
    os.environ.setdefault("AUDIT_CHAIN_KEY", "insecure-audit-chain-key-for-benchmarks-only")  # one for every process
    if not PostgresServer.available() or not shutil.which("redis-server"):
        print("soak: needs PostgreSQL server binaries (initdb, pg_ctl; runuser as root) and redis-server",
              file=sys.stderr)
        return 2
    folder = args.logs or Path(tempfile.mkdtemp(prefix="sparkbot-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    log(f"soak: {args.reroutes} reroutes, {args.workers} workers ({args.pool}, {args.concurrency} each), "
        f"{args.sources} sources, {'no faults' if args.no_faults else f'chaos rate {args.chaos_rate}'}; "
        f"logs in {folder}")
    rig = rig_up(args, folder)
    summary = None
    try:
        os.environ.update({name: rig.env[name] for name in
                           ("DATABASE_URL", "REDIS_URL", "SPARKBOT_API_URL", *rig.settings)})
        import django

        django.setup()
        import sparkbot_dash.celery  # noqa: F401  (the app this process publishes with)

        log(f"workers up; REROUTE_STUCK_AFTER_SECONDS={rig.env['REROUTE_STUCK_AFTER_SECONDS']}")
        summary = run_soak(rig, args)
    finally:
        rig.stop()
    report(summary, args)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    if summary["ok"] and not args.keep and not args.logs:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"logs kept in {folder}")
    if summary["code_changed_during_run"]:
        return 3
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
