"""The chaos soak (bench/soak.py): its invariant checker can fail, and the short soak holds.

The soak runs its own PostgreSQL cluster, redis-server, sandbox and workers, so it needs the
PostgreSQL server binaries and redis-server; it is not marked embedded, so `make
test-production` runs it and `make test-embedded` does not.
"""

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT, PostgresServer

spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "soak.py")
soak = sys.modules["bench_soak"] = importlib.util.module_from_spec(spec)  # bench/ is not a package
spec.loader.exec_module(soak)

SOURCE, OTHER = "65b000000000000000000001", "65b000000000000000000002"
TARGET = "65b000000000000000000099"
needs_servers = pytest.mark.skipif(
    not PostgresServer.available() or not shutil.which("redis-server"),
    reason="needs the PostgreSQL server binaries (initdb, pg_ctl; runuser as root) and redis-server",
)


def reroute(pk, status="succeeded", *, source=SOURCE, created=100.0, ended=110.0, moved=10, events=None, **extra):
    ending = [(status, "Moved …")] if status in ("succeeded", "failed") else []
    return {"id": pk, "source_id": source, "status": status, "created": created, "ended": ended,
            "messages_moved": moved, "attempts": 1, "events": events if events is not None else ending, **extra}


def route(at, moved=10, *, source=SOURCE):
    return {"source": source, "target": TARGET, "moved": moved, "at": at, "answer_lost": False}


def verdicts(reroutes, ledger, runs=(), audit=(True, "intact"), status_checks=()):
    found = soak.check_invariants(reroutes, ledger, list(runs), audit, list(status_checks))
    return {name: (v.held, v.violated) for name, v in found.items()}, found


def violated(found) -> dict:
    return {name: counts[1] for name, counts in found.items() if counts[1]}


def test_it_holds_when_each_route_belongs_to_the_reroute_that_counted_it():
    reroutes = [reroute(1), reroute(2, created=120, ended=130, moved=4), reroute(3, source=OTHER, moved=0)]
    counts, _ = verdicts(reroutes, [route(105), route(125, moved=4), route(126, moved=0)])
    assert violated(counts) == {}
    assert counts["routed_once"] == (3, 0) and counts["count"] == (3, 0) and counts["routes_accounted"] == (3, 0)


def test_it_finds_a_source_routed_twice_for_one_reroute():
    counts, found = verdicts([reroute(7, moved=10)], [route(101, moved=10), route(102, moved=7)])
    assert violated(counts) == {"routed_once": 1, "count": 1}
    assert found["routed_once"].examples[0].startswith("reroute #7 (succeeded, 1 attempts): the sandbox routed "
                                                       "its source 2 times, moving [10, 7]")
    assert "messages_moved=10, the sandbox moved 17" in found["count"].examples[0]


def test_it_finds_a_count_that_is_not_what_the_sandbox_moved():
    counts, _ = verdicts([reroute(1, moved=37)], [route(105, moved=36)])
    assert violated(counts) == {"count": 1}


def test_it_accepts_an_unknown_count_only_with_its_reason_on_record():
    with_reason = reroute(1, moved=None, events=[("call", "Tried to read the queue again: unavailable (500)."), (
        "succeeded", "Routed; the queue could not be read again after SparkBot accepted the route call.")])
    silent = reroute(2, source=OTHER, moved=None, events=[("succeeded", "Routed the queue.")])
    counts, found = verdicts([with_reason, silent], [route(105), route(106, source=OTHER)])
    assert counts["count"] == (1, 1) and found["count"].notes == {"unknown, with the reason": 1}


def test_it_finds_a_failed_reroute_that_moved_messages():
    counts, _ = verdicts([reroute(1, "failed", moved=None), reroute(2, "failed", source=OTHER, moved=None)],
                         [route(105, moved=36), route(106, moved=0, source=OTHER)])
    assert counts["failed_moved_nothing"] == (1, 1)


def test_it_finds_routes_outside_every_reroute_of_their_source():
    reroutes = [reroute(1, created=100, ended=110), reroute(2, created=120, ended=130, moved=0)]
    stray = [route(99), route(115), route(131), route(105, source=OTHER)]
    counts, found = verdicts(reroutes, [route(105), *stray])
    assert counts["routes_accounted"] == (1, 4)
    assert violated(counts) == {"routes_accounted": 4}
    assert "outside every reroute of that source" in found["routes_accounted"].examples[0]


def test_it_holds_a_route_of_a_reroute_that_has_not_ended_to_it():
    counts, _ = verdicts([reroute(1, "running", ended=None, moved=None)], [route(500)])
    assert counts["routes_accounted"] == (1, 0) and violated(counts) == {"ended": 1}


def test_it_finds_a_reroute_that_never_ended_or_ended_twice():
    twice = reroute(2, source=OTHER, events=[("succeeded", "Moved 10."), ("failed", "Interrupted.")], moved=10)
    counts, _ = verdicts([reroute(1, "queued", ended=None, moved=None), twice], [route(105, source=OTHER)])
    assert violated(counts) == {"ended": 1, "ended_once": 1}


def test_it_finds_an_unfinished_handover_run_and_a_broken_audit_log():
    runs = [{"id": 1, "status": "finished", "ended": True}, {"id": 2, "status": "running", "ended": False}]
    counts, found = verdicts([], [], runs, audit=(False, "The audit log is broken after 3 intact records."))
    assert violated(counts) == {"runs_ended": 1, "audit_log": 1}
    assert found["audit_log"].examples == ["The audit log is broken after 3 intact records."]


def test_it_finds_a_queue_status_not_restored_unless_an_event_says_so():
    said = reroute(1, handover_run_id=5, events=[("call", "The queue of Agent 1 is still paused: … Set it back "
                                                          "to “freeze” in SparkBot."), ("succeeded", "Moved 10.")])
    silent = reroute(2, source=OTHER, handover_run_id=5)
    checks = [(5, SOURCE, "freeze", "pause"), (5, OTHER, "reject", "active"), (5, TARGET, "active", "active")]
    counts, found = verdicts([said, silent], [route(105), route(106, source=OTHER)], status_checks=checks)
    assert counts["status_restored"] == (2, 1)
    assert found["status_restored"].examples[0].startswith(f"handover run #5: the queue of {OTHER} was 'reject' "
                                                           "before, 'active' after")


def run_soak(tmp_path, *options, timeout=300):
    summary_path = tmp_path / "summary.json"
    command = [sys.executable, str(ROOT / "bench" / "soak.py"), *options, "--json", str(summary_path),
               "--logs", str(tmp_path / "logs")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return result, summary


@needs_servers
def test_it_holds_every_invariant_through_the_short_soak(tmp_path):
    result, summary = run_soak(tmp_path, "--short")
    assert summary is not None, result.stdout[-3000:] + result.stderr[-3000:]
    report = result.stdout[-6000:]
    assert {name: v["violated"] for name, v in summary["invariants"].items() if v["violated"]} == {}, report
    assert result.returncode == 0, report
    assert summary["drained"] and summary["reroutes_ended"] >= 300
    # A worker may also exit by itself when its Redis restarts (Celery; docs/RELIABILITY.md): the soak
    # restarts it as a supervisor would, and every invariant must still hold.
    planned = {kind: n for kind, n in summary["disruptions"].items() if kind != "exited by itself"}
    assert planned == {"kill": 1, "redis": 1, "postgres": 1}, summary["disruption_problems"]
    assert summary["disruption_problems"] == [], summary["worker_exits"]
    assert sum(summary["faults_injected"].values()) >= 50
    assert sum(1 for n in summary["faults_injected"].values() if n) >= 4
    assert summary["handover_runs_started"] >= 2
    assert summary["invariants"]["audit_log"]["held"] == 1


@needs_servers
def test_it_reports_sources_routed_behind_the_reroutes_backs(tmp_path):
    result, summary = run_soak(tmp_path, "--reroutes", "30", "--workers", "1", "--no-faults", "--handover-plans", "1",
                               "--plant-violations")
    assert summary is not None, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 1, result.stdout[-6000:]
    planted, found = summary["planted"], summary["invariants"]
    assert {name: v["violated"] for name, v in found.items() if v["violated"]} == {
        "routed_once": 1, "count": 1, "failed_moved_nothing": 1, "routes_accounted": 1}
    (twice,), (failed,), (orphan,) = planted["routed_twice"], planted["failed_but_moved"], planted["orphan_route"]
    assert found["routed_once"]["examples"][0].startswith(f"reroute #{twice} ")
    assert found["count"]["examples"][0].startswith(f"reroute #{twice} ")
    assert found["failed_moved_nothing"]["examples"][0].startswith(f"reroute #{failed} (failed")
    assert found["routes_accounted"]["examples"][0].startswith(f"the sandbox routed {orphan} ")
