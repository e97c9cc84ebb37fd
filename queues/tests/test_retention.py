"""Retention: `manage.py archive_reroutes` writes the oldest ended reroutes to a verified archive, then deletes them."""

import gzip
import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from bench.seed_history import seed_history
from queues import devices, retention, services
from queues.models import AuditChainHead, HandoverRunItem, Reroute, RerouteEvent
from sparkbot_sandbox.seed import SALES_1, SALES_3
from tests.support import tamper

pytestmark = pytest.mark.django_db


def seed(rows: int, *, ended_days_ago: int, days: int, seed: int = 1) -> list[Reroute]:
    """`rows` ended reroutes spread over `days` days up to `ended_days_ago` days ago, chained after the rest."""
    before = Reroute.objects.count()
    seed_history(rows=rows, days=days, until=timezone.now() - timedelta(days=ended_days_ago), seed=seed)
    added = list(Reroute.objects.order_by("chain_seq")[before:])
    assert len(added) == rows
    return added


def archive(*args, **options) -> str:
    out = StringIO()
    call_command("archive_reroutes", *args, stdout=out, **options)
    return out.getvalue()


def verify() -> str:
    out = StringIO()
    call_command("verify_audit_log", stdout=out)
    return out.getvalue()


def archive_lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def head() -> AuditChainHead:
    return AuditChainHead.objects.get(pk=AuditChainHead.SINGLETON)


@pytest.fixture
def history():
    """Chain order: 20 old, then 10 recent, then 5 older still (ended earlier, chained later)."""
    return {
        "old": seed(20, ended_days_ago=100, days=100, seed=1),
        "recent": seed(10, ended_days_ago=10, days=10, seed=2),
        "older": seed(5, ended_days_ago=250, days=50, seed=3),
    }


def test_it_archives_the_oldest_stretch_of_the_chain_that_ended_before_the_cut_off(history, tmp_path):
    old_ids = [r.pk for r in history["old"]]
    old_events = RerouteEvent.objects.filter(reroute_id__in=old_ids).count()
    output = archive("--older-than-days=50", f"--output={tmp_path}")

    assert f"Archived 20 reroutes with {old_events} events (chain positions 1-20" in output
    [path] = tmp_path.glob("reroutes-*.jsonl.gz")
    assert f"Archive file (verified before deleting): {path}" in output
    assert not Reroute.objects.filter(pk__in=old_ids).exists()
    assert not RerouteEvent.objects.filter(reroute_id__in=old_ids).exists()
    # the 5 older ones ended before the cut-off too, but come after recent ones in the chain: kept
    kept = set(Reroute.objects.values_list("pk", flat=True))
    assert kept == {r.pk for r in history["recent"] + history["older"]}
    assert (head().archived_through_seq, head().archived_last_hash) == (20, history["old"][-1].chain_hash)
    assert verify() == "The audit log is intact: 15 ended reroutes checked.\n"


def test_it_writes_an_archive_that_holds_every_record_and_verifies_itself(history, tmp_path):
    old = history["old"]
    events = {r.pk: list(r.events.values_list("id", "kind", "message")) for r in old}
    archive("--older-than-days=50", f"--output={tmp_path}")
    [path] = tmp_path.glob("*.jsonl.gz")

    header, *records = archive_lines(path)
    assert header["format"] == retention.FORMAT and header["version"] == 2
    assert (header["first_seq"], header["last_seq"], header["reroutes"]) == (1, 20, 20)
    assert (header["previous_hash"], header["last_hash"]) == ("0" * 64, old[-1].chain_hash)
    assert [r["reroute"]["id"] for r in records] == [r.pk for r in old]
    assert records[3]["reroute"]["source_alias"] == old[3].source_alias
    assert records[3]["reroute"]["requested_by_username"] == old[3].requested_by_username
    assert [(e["id"], e["kind"], e["message"]) for e in records[3]["events"]] == events[old[3].pk]

    summary = retention.archive_verify(path)
    assert (summary.reroutes, summary.events, summary.last_hash) == (20, header["events"], old[-1].chain_hash)


def test_it_names_the_line_of_an_archive_that_was_altered(history, tmp_path):
    archive("--older-than-days=50", f"--output={tmp_path}")
    [path] = tmp_path.glob("*.jsonl.gz")
    header, *records = archive_lines(path)
    records[4]["reroute"]["messages_moved"] = 12345
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in [header, *records])

    with pytest.raises(retention.ArchiveInvalid, match=rf"line 6: reroute #{records[4]['reroute']['id']} "
                                                       r"\(chain position 5\) does not match its hash"):
        retention.archive_verify(path)


def test_it_checks_an_archive_file_on_its_own(history, tmp_path):
    archive("--older-than-days=50", f"--output={tmp_path}")
    [path] = tmp_path.glob("*.jsonl.gz")
    assert archive(f"--verify={path}") == (f"{path} is intact: 20 reroutes with {archive_lines(path)[0]['events']} "
                                           f"events, chain positions 1-20, from hash 000000000000… to "
                                           f"{history['old'][-1].chain_hash}.\n")
    path.write_bytes(path.read_bytes()[:-30])  # cut short
    with pytest.raises(CommandError, match="cannot be read whole"):
        archive(f"--verify={path}")


def test_it_deletes_nothing_when_the_archive_cannot_be_written(history, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = (Reroute.objects.count(), RerouteEvent.objects.count(), head().archived_through_seq)

    with pytest.raises(CommandError, match=r"Cannot write the archive in .*a-file/archive.*Nothing was deleted"):
        archive("--older-than-days=50", f"--output={blocker / 'archive'}")

    assert (Reroute.objects.count(), RerouteEvent.objects.count(), head().archived_through_seq) == before
    assert "35 ended reroutes checked" in verify()


def test_it_deletes_nothing_when_the_records_do_not_verify(history, tmp_path):
    altered = history["old"][7]
    tamper("UPDATE queues_reroute SET note = %s WHERE id = %s", ["rewritten", altered.pk])
    before = (Reroute.objects.count(), RerouteEvent.objects.count(), head().archived_through_seq)

    with pytest.raises(CommandError, match=rf"reroute #{altered.pk} \(chain position 8\) does not match its hash\. "
                                           "Nothing was deleted"):
        archive("--older-than-days=50", f"--output={tmp_path}")

    assert (Reroute.objects.count(), RerouteEvent.objects.count(), head().archived_through_seq) == before
    assert list(tmp_path.iterdir()) == []  # neither the archive nor a partial file is left


def test_it_never_archives_queued_or_running_reroutes(sandbox, lead, tmp_path, django_capture_on_commit_callbacks):
    device_list = devices.device_list()
    with django_capture_on_commit_callbacks(execute=False):
        waiting = services.reroute_request(source=device_list.get(SALES_3), target=device_list.get(SALES_1),
                                           note="stuck for months", user=lead)
    with connection.cursor() as cursor:  # a very old reroute that never ended
        cursor.execute("UPDATE queues_reroute SET created_at = %s, updated_at = %s WHERE id = %s",
                       [timezone.now() - timedelta(days=400), timezone.now() - timedelta(days=400), waiting.pk])
    seed(12, ended_days_ago=100, days=100)

    archive("--older-than-days=30", f"--output={tmp_path}")

    assert list(Reroute.objects.values_list("pk", "status")) == [(waiting.pk, "queued")]
    assert RerouteEvent.objects.filter(reroute=waiting).count() == 1
    assert verify() == "The audit log is intact: 0 ended reroutes checked.\n"


def test_it_archives_again_from_where_the_last_archive_ended(tmp_path):
    first = seed(8, ended_days_ago=300, days=30, seed=1)
    second = seed(6, ended_days_ago=200, days=30, seed=2)
    kept = seed(4, ended_days_ago=5, days=5, seed=3)

    archive("--older-than-days=250", f"--output={tmp_path / 'one'}")
    archive("--older-than-days=100", f"--output={tmp_path / 'two'}")

    [one], [two] = (tmp_path / "one").glob("*.gz"), (tmp_path / "two").glob("*.gz")
    assert archive_lines(one)[0]["last_hash"] == archive_lines(two)[0]["previous_hash"] == first[-1].chain_hash
    assert (archive_lines(two)[0]["first_seq"], archive_lines(two)[0]["last_seq"]) == (9, 14)
    assert retention.archive_verify(two).last_hash == second[-1].chain_hash
    assert set(Reroute.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
    assert verify() == "The audit log is intact: 4 ended reroutes checked.\n"
    assert "Nothing to archive" in archive("--older-than-days=100", f"--output={tmp_path / 'three'}")


def test_it_unlinks_handover_items_from_archived_reroutes_but_keeps_them(tmp_path):
    old = seed(60, ended_days_ago=100, days=100)
    handover_ids = {r.pk for r in old if r.handover_run_id}
    assert handover_ids, "the seed should hold handover reroutes"
    items = HandoverRunItem.objects.filter(reroute_id__in=handover_ids).count()

    output = archive("--older-than-days=50", f"--output={tmp_path}")

    assert f"{items} handover run items no longer link to their archived reroute." in output
    assert HandoverRunItem.objects.filter(reroute__isnull=True).count() == items
    assert not Reroute.objects.exists()


def test_it_does_nothing_when_retention_is_off(history, settings, tmp_path):
    settings.REROUTE_RETENTION_DAYS = 0
    output = archive(f"--output={tmp_path / 'archive'}")

    assert output == ("Retention is off (REROUTE_RETENTION_DAYS is 0): reroutes are kept forever; "
                      "nothing was archived.\n")
    assert Reroute.objects.count() == 35 and head().archived_through_seq == 0
    assert not (tmp_path / "archive").exists()


def test_it_takes_the_retention_period_from_the_setting(history, settings, tmp_path):
    settings.REROUTE_RETENTION_DAYS = 50
    settings.VAR_DIR = tmp_path
    output = archive()

    assert "Archived 20 reroutes" in output
    assert len(list((tmp_path / "archive").glob("reroutes-0000000001-0000000020-*.jsonl.gz"))) == 1


def test_it_only_says_what_it_would_archive_on_a_dry_run(history, tmp_path):
    output = archive("--older-than-days=50", f"--output={tmp_path / 'archive'}", "--dry-run")

    assert "Dry run: would archive 20 reroutes" in output and "chain positions 1-20" in output
    assert Reroute.objects.count() == 35 and head().archived_through_seq == 0
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize("days", ["-1", "36501", "800000", "99999999999"])
def test_it_refuses_a_number_of_days_it_cannot_count_back(history, tmp_path, days):
    with pytest.raises(CommandError, match=r"^--older-than-days must be between 0 and 36500 \(100 years\)\.$"):
        archive(f"--older-than-days={days}", f"--output={tmp_path / 'archive'}", "--dry-run")
    assert Reroute.objects.count() == 35


def test_it_says_an_explicit_zero_keeps_everything(history, tmp_path):
    output = archive("--older-than-days=0", f"--output={tmp_path / 'archive'}")
    assert output == "--older-than-days 0 keeps every reroute: nothing was archived.\n"
    assert Reroute.objects.count() == 35
