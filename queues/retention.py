"""Retention: move the oldest ended reroutes to a verified archive file, then out of the database.

Only a prefix of the audit chain is archived: the records from the first one still kept up
to the last one before the first record that ended at or after the cut-off (or is not
ended). Records that are queued or running are never in the chain, so never archived.

The archive is a gzip JSON-lines file: a header line naming the chain range, the hash
before it and the hash it ends with, then one line per reroute with its events inside.
It verifies itself: each record's hash is recomputed with `audit.record_hash` from the one
before, starting from the header's previous hash. The records are deleted only after the
written file has been read back and verified, in one transaction that also moves the
chain's archived mark, so that `verify_audit_log` starts where the archive ends.
"""

from __future__ import annotations

import gzip
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pgtrigger
from django.db import connections, router, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from . import audit
from .models import ARCHIVE_MAY_DELETE, AuditChainHead, Reroute, RerouteEvent

FORMAT = "sparkbot-dash reroute archive"
VERSION = 2  # 2: keyed hashes (HMAC with AUDIT_CHAIN_KEY)
EVENT_FIELDS = ["id", "at", "kind", "message", "detail"]
BATCH = 2000


class ArchiveError(Exception):
    """The archive could not be made; nothing was deleted."""


class ArchiveInvalid(ArchiveError):
    """An archive file (or the chain it was read from) does not verify."""


@dataclass(frozen=True)
class ArchivePlan:
    """What an archive run takes: chain positions first_seq..last_seq, in that order."""

    ended_before: datetime
    first_seq: int
    last_seq: int
    previous_hash: str
    last_hash: str
    reroutes: int
    events: int
    oldest_ended_at: datetime
    newest_ended_at: datetime


@dataclass(frozen=True)
class ArchiveSummary:
    """What a verified archive file holds."""

    first_seq: int
    last_seq: int
    previous_hash: str
    last_hash: str
    reroutes: int
    events: int


@dataclass(frozen=True)
class ArchiveResult:
    plan: ArchivePlan | None
    path: Path | None = None
    detached: int = 0  # links from other records (e.g. handover run items) cleared


# Choosing -------------------------------------------------------------------------------


def archive_plan(*, ended_before: datetime) -> ArchivePlan | None:
    """The oldest kept stretch of the chain whose records all ended before the cut-off; None if empty."""
    head = audit._head()
    first = head.archived_through_seq + 1
    blocker = (Reroute.objects.filter(chain_seq__gte=first)
               .filter(Q(ended_at__gte=ended_before) | Q(ended_at__isnull=True))
               .aggregate(seq=Min("chain_seq"))["seq"])
    last = blocker - 1 if blocker is not None else head.seq
    if last < first:
        return None
    chosen = Reroute.objects.filter(chain_seq__range=(first, last))
    found = chosen.count()
    if found != last - first + 1:
        raise ArchiveInvalid(f"The audit chain from position {first} to {last} should hold {last - first + 1} "
                             f"records but holds {found}: run verify_audit_log.")
    ends = chosen.aggregate(oldest=Min("ended_at"), newest=Max("ended_at"))
    return ArchivePlan(
        ended_before=ended_before, first_seq=first, last_seq=last,
        previous_hash=head.archived_last_hash,
        last_hash=chosen.get(chain_seq=last).chain_hash,
        reroutes=found,
        events=RerouteEvent.objects.filter(reroute__chain_seq__range=(first, last)).count(),
        oldest_ended_at=ends["oldest"], newest_ended_at=ends["newest"],
    )


# Writing and verifying ------------------------------------------------------------------


def archive_write(*, plan: ArchivePlan, directory: Path) -> Path:
    """Write the planned records to a new file in `directory`; a half-written file never keeps the final name."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    final = directory / f"reroutes-{plan.first_seq:010d}-{plan.last_seq:010d}-{stamp}.jsonl.gz"
    partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
    header = {
        "format": FORMAT, "version": VERSION, "first_seq": plan.first_seq, "last_seq": plan.last_seq,
        "previous_hash": plan.previous_hash, "last_hash": plan.last_hash,
        "reroutes": plan.reroutes, "events": plan.events,
        "ended_before": plan.ended_before, "written_at": timezone.now(),
    }
    try:
        with open(partial, "xb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as packed:
            packed.write(_line(header))
            for record in _records(plan.first_seq, plan.last_seq):
                packed.write(_line(record))
            packed.close()
            raw.flush()
            os.fsync(raw.fileno())
        if final.exists():
            raise ArchiveError(f"{final} already exists; it is not overwritten.")
        os.replace(partial, final)
        _fsync_directory(directory)
    finally:
        partial.unlink(missing_ok=True)
    return final


def _records(first: int, last: int):
    """Each record of chain positions first..last, in chain order, with its events; a batch at a time."""
    names = [f.attname for f in Reroute._meta.concrete_fields]
    for start in range(first, last + 1, BATCH):
        rows = list(Reroute.objects.filter(chain_seq__range=(start, min(last, start + BATCH - 1)))
                    .order_by("chain_seq").values(*names))
        events: dict[int, list[dict]] = {row["id"]: [] for row in rows}
        for event in (RerouteEvent.objects.filter(reroute_id__in=list(events)).order_by("id")
                      .values("reroute_id", *EVENT_FIELDS)):
            events[event.pop("reroute_id")].append(event)
        for row in rows:
            yield {"reroute": row, "events": events[row["id"]]}


def _line(data: dict) -> bytes:
    return (json.dumps(data, default=audit._plain, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def archive_verify(path: Path) -> ArchiveSummary:
    """Read an archive back and check it whole: header, chain positions, every hash, the counts."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            header = json.loads(next(lines, "null"))
            if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
                raise ArchiveInvalid(f"{path} is not a version {VERSION} reroute archive.")
            previous, seq, reroutes, events = header["previous_hash"], header["first_seq"], 0, 0
            for number, line in enumerate(lines, start=2):
                record = json.loads(line)
                reroute = record["reroute"]
                if reroute["chain_seq"] != seq:
                    raise ArchiveInvalid(f"{path} line {number}: chain position {reroute['chain_seq']} "
                                         f"where {seq} was expected.")
                hashed, _late_notes = audit.chained_events([SimpleNamespace(**e) for e in record["events"]])
                computed = audit.record_hash(previous, SimpleNamespace(**reroute), hashed)
                if computed != reroute["chain_hash"]:
                    raise ArchiveInvalid(f"{path} line {number}: reroute #{reroute['id']} (chain position {seq}) "
                                         "does not match its hash.")
                previous, seq, reroutes, events = computed, seq + 1, reroutes + 1, events + len(record["events"])
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:  # gzip CRC, truncation, bad JSON
        raise ArchiveInvalid(f"{path} cannot be read whole: {type(error).__name__}: {error}") from error
    expected = (header["last_seq"] - header["first_seq"] + 1, header["reroutes"], header["events"],
                header["last_hash"])
    if (reroutes, reroutes, events, previous) != expected:
        raise ArchiveInvalid(f"{path} holds {reroutes} records and {events} events ending with hash {previous[:12]}…; "
                             f"its header announces {header['reroutes']} records, {header['events']} events, "
                             f"positions {header['first_seq']}-{header['last_seq']} ending with "
                             f"{header['last_hash'][:12]}….")
    return ArchiveSummary(first_seq=header["first_seq"], last_seq=header["last_seq"],
                          previous_hash=header["previous_hash"], last_hash=previous,
                          reroutes=reroutes, events=events)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# Deleting -------------------------------------------------------------------------------


def archived_delete(*, plan: ArchivePlan) -> int:
    """Delete the archived records (events first) and move the chain's archived mark, in one transaction.

    Other records that point at an archived reroute through a nullable link (a handover
    run's item) lose the link; returns how many did. Refuses, changing nothing, if another
    archive run moved the mark meanwhile.
    """
    using = router.db_for_write(Reroute)
    with (transaction.atomic(using=using), _values_bound_in_the_statement(using),
          pgtrigger.ignore(*ARCHIVE_MAY_DELETE, databases=[using])):
        reroutes = Reroute.objects.using(using).filter(chain_seq__range=(plan.first_seq, plan.last_seq))
        detached = _detach_links(reroutes, using)
        RerouteEvent.objects.using(using).filter(reroute__in=reroutes.values("pk"))._raw_delete(using)
        deleted = reroutes._raw_delete(using)
        moved = AuditChainHead.objects.using(using).filter(
            pk=AuditChainHead.SINGLETON, archived_through_seq=plan.first_seq - 1,
            archived_last_hash=plan.previous_hash,
        ).update(archived_through_seq=plan.last_seq, archived_last_hash=plan.last_hash)
        if deleted != plan.reroutes or moved != 1:
            raise ArchiveError("Another archive run changed the chain meanwhile.")
    return detached


@contextmanager
def _values_bound_in_the_statement(using: str):
    """pgtrigger.ignore() puts a SET before each statement, in the same string. PostgreSQL takes two
    statements at once only with their values written into them: the cursors Django makes here send
    values apart (settings: prepared statements), so this block's cursors write them in."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    from django.db.backends.postgresql.base import Cursor

    connection.ensure_connection()
    driver = connection.connection
    sends_apart, driver.cursor_factory = driver.cursor_factory, Cursor
    try:
        yield
    finally:
        driver.cursor_factory = sends_apart


def _detach_links(reroutes, using: str) -> int:
    detached = 0
    relations = [f for f in Reroute._meta.get_fields(include_hidden=True)  # related_name "+" is hidden
                 if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)]
    for relation in relations:
        if relation.related_model is RerouteEvent:
            continue
        if not relation.field.null:
            raise ArchiveError(f"{relation.related_model.__name__}.{relation.field.name} must point at a reroute, "
                               "so reroutes cannot be archived.")
        linked = relation.related_model._base_manager.using(using).filter(
            **{f"{relation.field.name}__in": reroutes.values("pk")})
        detached += linked.update(**{relation.field.name: None})
    return detached


# The whole run --------------------------------------------------------------------------


def reroutes_archive(*, ended_before: datetime, directory: Path, dry_run: bool = False) -> ArchiveResult:
    """Archive every record the plan takes: write, read back and verify, and only then delete."""
    plan = archive_plan(ended_before=ended_before)
    if plan is None or dry_run:
        return ArchiveResult(plan)
    path = archive_write(plan=plan, directory=directory)
    try:
        summary = archive_verify(path)
        if (summary.first_seq, summary.last_seq, summary.previous_hash, summary.last_hash) != (
                plan.first_seq, plan.last_seq, plan.previous_hash, plan.last_hash):
            raise ArchiveInvalid(f"{path} verifies, but does not hold the planned chain positions "
                                 f"{plan.first_seq}-{plan.last_seq}.")
        detached = archived_delete(plan=plan)
    except Exception:
        path.unlink(missing_ok=True)  # the records stay in the database; a file would only duplicate them
        raise
    return ArchiveResult(plan, path, detached)
