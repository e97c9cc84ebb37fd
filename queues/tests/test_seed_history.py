"""`manage.py seed_history`: realistic, chained reroute history appended after what is there."""

from collections import Counter
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from queues import devices, services, sparkbot
from queues.models import AuditChainHead, HandoverRun, HandoverRunItem, Reroute, RerouteEvent
from sparkbot_sandbox.seed import SALES_3, SALES_4

pytestmark = pytest.mark.django_db
UNTIL = "2026-06-30T12:00:00+00:00"
ERROR_CODES = {"device_not_found", "refused", "timeout", "rate_limited", "unavailable", "connection_failed",
               "forbidden", "unauthorized", "interrupted", "queue_unavailable"}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_history", *args, stdout=out)
    return out.getvalue()


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


@pytest.fixture
def seeded():
    output = seed("--rows=600", "--days=30", f"--until={UNTIL}", "--seed=7")
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
    assert all(r.handover_run_id and r.note.startswith("Handover “") for r in handover)
    assert HandoverRunItem.objects.filter(reroute__in=handover).count() == len(handover)
    assert all(r.handover_run_id is None for r in reroutes if r.origin != "handover")

    assert 100 < len({r.source_id for r in reroutes}) <= 300
    assert any(not r.source_alias.isascii() for r in reroutes)
    assert 10 <= len({r.requested_by_username for r in reroutes}) <= 21
    assert all(r.requested_by.username == r.requested_by_username for r in reroutes if r.requested_by_id)


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

    seed("--rows=40", f"--until={UNTIL}")
    seed("--rows=30", f"--until={UNTIL}", "--seed=2")

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
    seed("--rows=80", "--days=10", f"--until={UNTIL}", "--seed=11")
    first = list(Reroute.objects.order_by("id").prefetch_related("events"))
    seed("--rows=80", "--days=10", f"--until={UNTIL}", "--seed=11")
    again = list(Reroute.objects.order_by("id").prefetch_related("events"))[80:]
    seed("--rows=80", "--days=10", f"--until={UNTIL}", "--seed=12")
    other = list(Reroute.objects.order_by("id").prefetch_related("events"))[160:]

    assert content(again) == content(first)
    assert content(other) != content(first)
    assert {r.idempotency_key for r in first}.isdisjoint(r.idempotency_key for r in again)
    assert "240 ended reroutes checked" in verify()


def test_it_refuses_a_number_of_rows_below_one():
    with pytest.raises(Exception, match="--rows, --days and --batch must be at least 1"):
        seed("--rows=0")
