"""Tamper evidence: every ended reroute carries a keyed hash chained to the one that ended before it.

The hash (HMAC-SHA256 with AUDIT_CHAIN_KEY, a secret kept out of the database) covers the
reroute's audit fields, its timeline up to its end, and the previous hash, so that changing,
removing or inserting a record anywhere breaks the chain from there on, and nobody without
the key can compute a chain that verifies. The only events that may follow the end are notes
of late attempts (kind "superseded"); they are outside the hash, and anything else after the
end is reported. docs/SECURITY.md says what this defends against and what it does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from .models import AuditChainHead, Reroute, RerouteEvent

END_KINDS = (RerouteEvent.Kind.SUCCEEDED, RerouteEvent.Kind.FAILED)


class AlreadyChained(Exception):
    """A reroute that already holds a place in the chain was offered another."""

GENESIS = "0" * 64
HASHED_FIELDS = [
    "id", "created_at", "requested_by_username", "origin", "handover_run_id", "idempotency_key",
    "source_id", "source_alias", "source_phone", "target_id", "target_alias", "target_phone", "note",
    "status", "attempts", "started_at", "routed_at", "ended_at", "messages_moved",
    "stats_before", "stats_after", "api_reply", "error_code", "error_message", "chain_seq",
]
# Fields added after records were first chained: hashed when they hold something, so that older
# records keep their hashes.
HASHED_WHEN_SET = ["rule_id", "rule_name"]


def record_hash(previous: str, reroute: Reroute, events: list[RerouteEvent]) -> str:
    """The keyed hash of a record, given its events up to and including its end event."""
    return hmac.new(_key(), f"{previous}\n{canonical(reroute, events)}".encode(), hashlib.sha256).hexdigest()


def canonical(reroute: Reroute, events: list[RerouteEvent]) -> str:
    """The record's audit fields and timeline as one canonical JSON text."""
    fields = {name: getattr(reroute, name) for name in HASHED_FIELDS}
    fields.update({name: getattr(reroute, name) for name in HASHED_WHEN_SET if getattr(reroute, name, None)})
    content = {"reroute": fields, "events": [[e.id, e.at, e.kind, e.message, e.detail] for e in events]}
    return json.dumps(content, sort_keys=True, default=_plain, ensure_ascii=False, separators=(",", ":"))


def _key() -> bytes:
    return settings.AUDIT_CHAIN_KEY.encode()


def chained_events(events: list[RerouteEvent]) -> tuple[list[RerouteEvent], list[RerouteEvent]]:
    """(the events up to and including the end event, the events after it)."""
    for index, event in enumerate(events):
        if event.kind in END_KINDS:
            return events[:index + 1], events[index + 1:]
    return events, []


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def chain_append(reroute: Reroute) -> None:
    """Give an ending reroute the next place in the chain; call inside the transaction that ends it."""
    if reroute.chain_seq is not None:  # (an active row, re-read under its fence, never has one)
        raise AlreadyChained(f"Reroute {reroute.pk} already holds a place in the audit chain.")
    head = _head(lock=True)
    reroute.chain_seq = head.seq + 1
    reroute.chain_hash = record_hash(head.last_hash, reroute, chained_events(list(reroute.events.order_by("id")))[0])
    head.seq, head.last_hash = reroute.chain_seq, reroute.chain_hash
    head.save(update_fields=["seq", "last_hash"])


def _head(*, lock: bool = False) -> AuditChainHead:
    heads = AuditChainHead.objects.select_for_update() if lock else AuditChainHead.objects
    head = heads.filter(pk=AuditChainHead.SINGLETON).first()
    if head is None:  # made by a migration; a test's flush may have removed it
        AuditChainHead.objects.get_or_create(pk=AuditChainHead.SINGLETON)
        head = heads.get(pk=AuditChainHead.SINGLETON)
    return head


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken_reroute_id: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return not self.reason


def chain_verify(*, batch_size: int = 2000) -> ChainReport:
    """Walk the chain from the oldest kept record; name the first record that breaks it.

    On PostgreSQL the head, the records and their events are read in one snapshot, so that a
    reroute ending or an archive run committing during the walk is not taken for tampering.
    """
    AuditChainHead.objects.get_or_create(pk=AuditChainHead.SINGLETON)
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return _chain_walk(batch_size)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _chain_walk(batch_size)


def _chain_walk(batch_size: int) -> ChainReport:
    head = _head()
    previous, expected_seq, checked = head.archived_last_hash, head.archived_through_seq + 1, 0
    unchained = Reroute.objects.filter(status__in=Reroute.ENDED, chain_seq__isnull=True).order_by("id").first()
    if unchained:
        return ChainReport(0, unchained.pk, f"Reroute #{unchained.pk} has ended but is not in the chain.")
    chained = Reroute.objects.filter(chain_seq__isnull=False).order_by("chain_seq").prefetch_related("events")
    for reroute in chained.iterator(chunk_size=batch_size):
        if reroute.chain_seq != expected_seq:
            return ChainReport(checked, reroute.pk, f"Reroute #{reroute.pk} holds chain position {reroute.chain_seq} "
                               f"where {expected_seq} was expected: a record before it is missing or was added.")
        hashed, after_end = chained_events(list(reroute.events.all()))
        if record_hash(previous, reroute, hashed) != reroute.chain_hash:
            return ChainReport(checked, reroute.pk, f"Reroute #{reroute.pk} (chain position {reroute.chain_seq}) "
                               "does not match its hash: it, its timeline or the record before it was changed.")
        if any(event.kind != RerouteEvent.Kind.SUPERSEDED for event in after_end):
            return ChainReport(checked, reroute.pk, f"Reroute #{reroute.pk} (chain position {reroute.chain_seq}) "
                               "has events after its end that no attempt writes: its timeline was added to.")
        previous, expected_seq, checked = reroute.chain_hash, expected_seq + 1, checked + 1
    if (head.seq, head.last_hash) != (expected_seq - 1, previous):
        return ChainReport(checked, None, f"The chain ends at position {expected_seq - 1}, but {head.seq} "
                           "records were chained: the newest records were removed.")
    return ChainReport(checked)
