"""bench/seed_history.py: realistic, chained reroute history appended after what is there, worded as services do."""

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command, get_commands
from django.db import connection

from bench.seed_history import seed_history, summary
from queues import devices, sentences, services, sparkbot
from queues.models import AuditChainHead, HandoverRun, HandoverRunItem, Reroute, RerouteEvent
from sparkbot_sandbox.seed import SALES_3, SALES_4
from tests.support import ROOT, database_url_in_use

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]  # COPY on PostgreSQL, executemany elsewhere
UNTIL = "2026-06-30T12:00:00+00:00"
ERROR_CODES = {"device_not_found", "refused", "timeout", "rate_limited", "unavailable", "connection_failed",
               "forbidden", "unauthorized", "interrupted", "queue_unavailable"}


def seed(rows: int, *, until: str = UNTIL, **options) -> str:
    return summary(seed_history(rows=rows, until=datetime.fromisoformat(until), **options))


def verify() -> str:
    out = StringIO()
    call_command("verify_audit_log", stdout=out)
    return out.getvalue()


def content(reroutes) -> list[tuple]:
    """What a seeded row says, without what depends on where it was appended (ids, chain, keys)."""
    return [
        (r.created_at, r.ended_at, r.requested_by_username, r.origin, r.source_id, r.source_alias, r.target_id,
         r.note, r.status, r.messages_moved, r.error_code, r.error_message, r.stats_before,
         [(e.at, e.kind, e.message, e.detail) for e in r.events.all()])
        for r in reroutes
    ]


def shape(reroute: Reroute) -> list[tuple]:
    """A timeline without what differs from one reroute to the next: each event's kind and detail keys,
    and the words of each SparkBot call."""
    return [(e.kind, sorted(e.detail or {}), e.message if e.kind == "call" else "") for e in reroute.events.all()]


class CallError:
    """A failed call as its event detail records it, for sentences.call_failed."""

    def __init__(self, detail: dict):
        self.code, self.status_code, self.detail = detail["error"], detail["status"], detail["detail"]


@pytest.fixture
def seeded():
    output = seed(600, days=30, seed=7)
    return output, list(Reroute.objects.order_by("id").prefetch_related("events"))


def test_it_adds_the_rows_each_with_three_to_six_events(seeded):
    output, reroutes = seeded
    assert len(reroutes) == 600
    per_reroute = Counter(RerouteEvent.objects.values_list("reroute_id", flat=True))
    assert set(per_reroute) == {r.pk for r in reroutes}
    assert min(per_reroute.values()) >= 3 and max(per_reroute.values()) <= 6
    assert all(r.events.all()[0].kind == "requested" and r.events.all().reverse()[0].kind == r.status
               for r in reroutes)
    assert output.startswith(f"Seeded 600 reroutes with {RerouteEvent.objects.count()} events and "
                             f"{HandoverRun.objects.count()} handover runs over 30 days (ids ")


def test_it_mixes_outcomes_origins_numbers_and_people_as_real_history_does(seeded):
    _output, reroutes = seeded
    statuses = Counter(r.status for r in reroutes)
    assert set(statuses) == {"succeeded", "failed"}  # never queued or running: no sweeper picks one up
    assert 0.8 < statuses["succeeded"] / 600 < 0.97
    failed = [r for r in reroutes if r.status == "failed"]
    assert {r.error_code for r in failed} <= ERROR_CODES and len({r.error_code for r in failed}) >= 4
    assert all(r.error_message and r.messages_moved is None for r in failed)
    assert any("is no longer a SparkBot device; refresh the device list." in r.error_message for r in failed)
    succeeded = [r for r in reroutes if r.status == "succeeded"]
    assert all(r.messages_moved == r.stats_before["total"] - r.stats_after["total"] for r in succeeded)
    assert any(r.messages_moved == 0 for r in succeeded) and max(r.messages_moved for r in succeeded) > 20

    origins = Counter(r.origin for r in reroutes)
    assert origins["web"] > 350 and {"handover", "cli", "api"} <= set(origins)
    handover = [r for r in reroutes if r.origin == "handover"]
    assert all(r.handover_run_id and r.note == sentences.handover_note(r.handover_run.plan_name) for r in handover)
    assert HandoverRunItem.objects.filter(reroute__in=handover).count() == len(handover)
    assert all(r.handover_run_id is None for r in reroutes if r.origin != "handover")

    assert 100 < len({r.source_id for r in reroutes}) <= 300
    assert any(not r.source_alias.isascii() for r in reroutes)
    assert 10 <= len({r.requested_by_username for r in reroutes}) <= 21
    assert all(r.requested_by.username == r.requested_by_username for r in reroutes if r.requested_by_id)


def test_it_words_every_event_with_the_sentences_the_services_write(seeded):
    _output, reroutes = seeded
    kinds = Counter()
    for r in reroutes:
        events = list(r.events.all())
        assert events[0].message == sentences.requested(r.requested_by_username, r.source_label, r.target_label)
        assert events[1].message == sentences.started(1)
        assert events[-1].message == r.outcome
        for event in events[2:-1]:
            kinds[event.kind] += 1
            detail = event.detail
            if event.kind == "call" and "error" in detail:
                error = CallError(detail)
                assert event.message == sentences.call_failed(detail["what"], error)
                assert detail == sentences.call_detail(detail["what"], detail["ms"] / 1000, error)
            elif event.kind == "call":
                assert event.message == sentences.call_answered(detail["what"])
                assert detail == sentences.call_detail(detail["what"], detail["ms"] / 1000)
            elif event.kind == "retry":
                reason = event.message.rsplit(" Retrying in ", 1)[0]
                assert event.message == sentences.retrying(reason, detail["wait_seconds"], 2)
            else:
                assert event.kind == "recovered"
                assert event.message == sentences.last_attempt_silent(r.attempts, settings.REROUTE_STUCK_AFTER_SECONDS)
        if r.error_code == "interrupted":
            assert r.error_message == sentences.nothing_moved(sentences.interrupted(r.source_alias, r.target_alias),
                                                              r.source_alias, r.stats_before["total"])
        if r.error_code == "queue_unavailable":
            assert r.error_message == sentences.QUEUE_UNAVAILABLE
    assert set(kinds) == {"call", "retry", "recovered"}
    assert {"interrupted", "queue_unavailable"} <= {r.error_code for r in reroutes}


def test_it_writes_the_timelines_the_services_write(sandbox, lead, django_capture_on_commit_callbacks):
    device_list = devices.device_list()
    real = {}
    for name, source, target in (("routed", SALES_3, SALES_4), ("refused", SALES_4, SALES_3)):
        if name == "refused":
            sandbox.fault(route="route_queue", status=409, times=1)
        with django_capture_on_commit_callbacks(execute=False):
            reroute = services.reroute_request(source=device_list.get(source), target=device_list.get(target),
                                               note="", user=lead)
        services.reroute_execute(reroute_id=reroute.pk)
        real[name] = Reroute.objects.get(pk=reroute.pk)
    assert (real["routed"].status, real["refused"].error_code) == ("succeeded", "refused")

    seed(300, days=10, seed=3)
    seeded = Reroute.objects.exclude(pk__in=[r.pk for r in real.values()])
    like = {"routed": seeded.filter(status="succeeded", messages_moved__gt=0).first(),
            "refused": seeded.filter(error_code="refused").first()}
    for name, reroute in real.items():
        assert shape(like[name]) == shape(reroute), name
        assert sorted(like[name].stats_before) == sorted(reroute.stats_before), name
    assert sorted(like["routed"].stats_after) == sorted(real["routed"].stats_after)


def test_it_fills_search_text_as_a_requested_reroute_has_it(seeded):
    _output, reroutes = seeded
    for r in reroutes:
        source = sparkbot.Device(r.source_id, r.source_alias, r.source_phone, "", "")
        target = sparkbot.Device(r.target_id, r.target_alias, r.target_phone, "", "")
        assert r.search_text == services.search_text(r.note, source, target)


def test_it_spreads_the_rows_over_the_last_days(seeded):
    _output, reroutes = seeded
    until = datetime.fromisoformat(UNTIL)
    assert all(until - timedelta(days=30) <= r.created_at < r.started_at < r.ended_at <= until + timedelta(hours=1)
               for r in reroutes)
    assert reroutes[-1].created_at - reroutes[0].created_at > timedelta(days=29)
    assert all(a.created_at < b.created_at for a, b in zip(reroutes, reroutes[1:]))


def test_it_chains_every_row_so_that_the_audit_log_verifies(seeded):
    _output, reroutes = seeded
    assert sorted(r.chain_seq for r in reroutes) == list(range(1, 601))
    in_chain_order = sorted(reroutes, key=lambda r: r.chain_seq)
    assert all(a.ended_at <= b.ended_at for a, b in zip(in_chain_order, in_chain_order[1:]))
    head = AuditChainHead.objects.get()
    assert (head.seq, head.last_hash) == (600, in_chain_order[-1].chain_hash)
    assert verify() == "The audit log is intact: 600 ended reroutes checked.\n"


def test_it_appends_after_existing_history(sandbox, lead, django_capture_on_commit_callbacks):
    device_list = devices.device_list()
    with django_capture_on_commit_callbacks(execute=False):
        existing = services.reroute_request(source=device_list.get(SALES_3), target=device_list.get(SALES_4),
                                            note="before the seed", user=lead)
    services.reroute_execute(reroute_id=existing.pk)
    existing.refresh_from_db()
    assert existing.chain_seq == 1

    seed(40)
    seed(30, seed=2)

    added = list(Reroute.objects.exclude(pk=existing.pk).order_by("id"))
    assert len(added) == 70 and added[0].pk > existing.pk
    assert sorted(r.chain_seq for r in added) == list(range(2, 72))
    assert RerouteEvent.objects.filter(reroute__in=added).order_by("id").first().pk > max(
        existing.events.values_list("id", flat=True))
    assert verify() == "The audit log is intact: 71 ended reroutes checked.\n"
    with django_capture_on_commit_callbacks(execute=False):
        later = services.reroute_request(source=device_list.get(SALES_4), target=device_list.get(SALES_3),
                                         note="after the seed", user=lead)
    services.reroute_execute(reroute_id=later.pk)
    later.refresh_from_db()
    assert later.pk > added[-1].pk and later.chain_seq == 72
    assert "72 ended reroutes checked" in verify()


def test_it_gives_the_same_rows_for_the_same_seed():
    seed(80, days=10, seed=11)
    first = list(Reroute.objects.order_by("id").prefetch_related("events"))
    seed(80, days=10, seed=11)
    again = list(Reroute.objects.order_by("id").prefetch_related("events"))[80:]
    seed(80, days=10, seed=12)
    other = list(Reroute.objects.order_by("id").prefetch_related("events"))[160:]

    assert content(again) == content(first)
    assert content(other) != content(first)
    assert {r.idempotency_key for r in first}.isdisjoint(r.idempotency_key for r in again)
    assert "240 ended reroutes checked" in verify()


def test_it_refuses_a_number_of_rows_below_one():
    with pytest.raises(ValueError, match="rows, days and batch must be at least 1"):
        seed(0)
    assert not Reroute.objects.exists()


def test_it_is_not_a_command_of_the_shipped_app():
    assert "seed_history" not in get_commands()


def script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SECRET_KEY": settings.SECRET_KEY, "AUDIT_CHAIN_KEY": settings.AUDIT_CHAIN_KEY,
           "DATABASE_URL": database_url_in_use()}
    return subprocess.run([sys.executable, "bench/seed_history.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.django_db(transaction=True)
def test_it_runs_as_a_script_that_sets_django_up_itself():
    result = script("--rows=25", "--days=3", f"--until={UNTIL}", "--seed=5")
    assert result.returncode == 0, result.stderr
    writer = "COPY" if connection.vendor == "postgresql" else "executemany"
    assert result.stdout.startswith("Seeded 25 reroutes with ") and f"reroutes/s, {writer})" in result.stdout
    assert Reroute.objects.count() == 25
    assert verify() == "The audit log is intact: 25 ended reroutes checked.\n"

    refused = script("--rows=0")
    assert refused.returncode == 2 and "--rows, --days and --batch must be at least 1." in refused.stderr
