"""Reads of the reroute history: the filtered set, a keyset page of it, its exports, one reroute's story.

Built for years of shift changes (millions of rows, PostgreSQL): every page walks an
index newest first from a cursor id (highest id first; with a date range, along the
created_at index, then id), never OFFSET, never COUNT(*); a device is two index walks
merged; the free text is LIKE on the lower-case search_text, served by its trigram index;
exports stream from a server-side cursor in chunks, times formatted by the database.
Nothing here writes.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterator

from django.conf import settings
from django.db.models import CharField, F, FloatField, Func, Q, QuerySet
from django.utils import timezone

from . import sentences
from .models import Reroute, RerouteEvent
from .sparkbot import redact

PAGE_SIZE = 50
EXPORT_CHUNK_SIZE = 2000
PAGE_COLUMNS = [
    "id", "created_at", "ended_at", "requested_by_username", "origin", "handover_run_id",
    "source_id", "source_alias", "source_phone", "target_id", "target_alias", "target_phone",
    "note", "status", "messages_moved", "error_code",
]
EXPORT_COLUMNS = [
    "id", "created_at", "requested_by_username", "origin", "handover_run_id",
    "source_id", "source_alias", "source_phone", "target_id", "target_alias", "target_phone",
    "note", "status", "attempts", "started_at", "ended_at", "messages_moved", "error_code", "error_message",
]
EXPORT_HEADER = [*EXPORT_COLUMNS, "duration_seconds"]
FORMULA_STARTS = frozenset("=+-@\t\r")  # a spreadsheet reads a cell starting with these as a formula


@dataclass(frozen=True)
class HistoryFilters:
    """What the history is narrowed to; empty values filter nothing. Text is already lower case."""

    date_from: date | None = None
    date_to: date | None = None
    device: str = ""
    user: str = ""
    status: str = ""
    origin: str = ""
    handover: int | None = None
    rule: int | None = None
    q: str = ""


@dataclass(frozen=True)
class HistoryPage:
    rows: list[Reroute]
    newer: int | None = None  # after=<this id> opens the newer page
    older: int | None = None  # before=<this id> opens the older page
    cursor: dict = field(default_factory=dict)  # {} on the newest page, else {"before": id} or {"after": id}

    @property
    def is_newest(self) -> bool:
        return not self.cursor


# The filtered set ---------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _filtered_except_device(*, filters: HistoryFilters) -> QuerySet:
    reroutes = Reroute.objects.all()
    if filters.date_from:
        reroutes = reroutes.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        reroutes = reroutes.filter(created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    if filters.user:
        reroutes = reroutes.filter(requested_by_username=filters.user)
    if filters.status:
        reroutes = reroutes.filter(status=filters.status)
    if filters.origin:
        reroutes = reroutes.filter(origin=filters.origin)
    if filters.handover:
        reroutes = reroutes.filter(handover_run_id=filters.handover)
    if filters.rule:
        reroutes = reroutes.filter(rule_id=filters.rule)
    if filters.q:
        reroutes = reroutes.filter(search_text__contains=filters.q)  # LIKE '%q%': the trigram index
    return reroutes


def _by_time(filters: HistoryFilters) -> bool:
    """With a date range the history is walked along created_at (its index starts at the range),
    else along id; within one set of filters the order never changes, so pages neither repeat nor skip."""
    return bool(filters.date_from or filters.date_to)


def _order(filters: HistoryFilters, *, newest_first: bool = True) -> list[str]:
    fields = ["created_at", "id"] if _by_time(filters) else ["id"]
    return [f"-{name}" for name in fields] if newest_first else fields


def history_filtered(*, filters: HistoryFilters) -> QuerySet:
    """Every reroute the filters let through, newest first."""
    reroutes = _filtered_except_device(filters=filters)
    if filters.device:
        reroutes = reroutes.filter(Q(source_id=filters.device) | Q(target_id=filters.device))
    return reroutes.order_by(*_order(filters))


@dataclass(frozen=True)
class _Anchor:
    """A place in the history: a row's id and, when walking by time, its created_at."""

    id: int
    created_at: datetime | None = None
    inclusive: bool = False  # the anchor row itself belongs to the page (its own id was gone)


def _beyond(reroutes: QuerySet, anchor: _Anchor, *, older: bool, inclusive: bool = False) -> QuerySet:
    """The rows past the anchor in the history's order: older (further down) or newer."""
    side = "lt" if older else "gt"
    if anchor.created_at is None:
        return reroutes.filter(**{f"id__{side}{'e' if inclusive else ''}": anchor.id})
    ts = anchor.created_at
    same_time = Q(**{f"id__{side}{'e' if inclusive else ''}": anchor.id})
    return reroutes.filter(**{f"created_at__{side}e": ts}).filter(Q(**{f"created_at__{side}": ts}) | same_time)


def _anchor(filters: HistoryFilters, cursor_id: int, *, older: bool) -> _Anchor | None:
    """Where a cursor points. By id it needs no read; by time it reads the cursor row's created_at
    (or, if that row is gone, the nearest row past it, which then belongs to the page)."""
    if not _by_time(filters):
        return _Anchor(cursor_id)
    row = Reroute.objects.filter(pk=cursor_id).order_by().values_list("id", "created_at").first()
    if row:
        return _Anchor(*row)
    nearest = Reroute.objects.filter(**{f"id__{'lt' if older else 'gt'}": cursor_id}).order_by(
        "-id" if older else "id").values_list("id", "created_at").first()
    return _Anchor(*nearest, inclusive=True) if nearest else None


def _branches(*, filters: HistoryFilters) -> list[QuerySet]:
    """The filtered set as one or two querysets, each served by one index walk.

    A device is a source or a target: two index walks, (source_id, -id) and (target_id, -id),
    merged here, are cheaper than one OR that the database must sort.
    """
    reroutes = _filtered_except_device(filters=filters).only(*PAGE_COLUMNS)
    if not filters.device:
        return [reroutes]
    return [reroutes.filter(source_id=filters.device), reroutes.filter(target_id=filters.device)]


def _take(branches: list[QuerySet], *, filters: HistoryFilters, newest_first: bool, limit: int) -> list[Reroute]:
    order = _order(filters, newest_first=newest_first)
    found = {row.pk: row for branch in branches for row in branch.order_by(*order)[:limit]}
    key = (lambda row: (row.created_at, row.pk)) if _by_time(filters) else (lambda row: row.pk)
    return sorted(found.values(), key=key, reverse=newest_first)[:limit]


def _any_beyond(branches: list[QuerySet], row: Reroute, *, filters: HistoryFilters, older: bool) -> bool:
    """Whether a row lies past this one; walked in the page's order from the row, so the search
    stops at the nearest match instead of wherever the table happens to start."""
    anchor = _Anchor(row.pk, row.created_at if _by_time(filters) else None)
    order = _order(filters, newest_first=older)
    return any(_beyond(branch, anchor, older=older).order_by(*order).values_list("id", flat=True)[:1]
               for branch in branches)


def history_page(
    *, filters: HistoryFilters, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE,
) -> HistoryPage:
    """One page of the filtered history, newest first, from a cursor id (keyset pagination, no OFFSET).

    No cursor: the newest page. before=<id>: the rows after that row, going down the
    history. after=<id>: the rows before it (the way back up); when a page or less
    remains above it, the newest page.
    """
    branches = _branches(filters=filters)
    if after is not None:
        anchor = _anchor(filters, after, older=False)
        if anchor is not None:
            newer = [_beyond(b, anchor, older=False, inclusive=anchor.inclusive) for b in branches]
            rows = _take(newer, filters=filters, newest_first=False, limit=size + 1)
            if len(rows) > size:
                rows = rows[:size][::-1]
                older = rows[-1].pk if _any_beyond(branches, rows[-1], filters=filters, older=True) else None
                return HistoryPage(rows=rows, newer=rows[0].pk, older=older, cursor={"after": after})
    elif before is not None:
        anchor = _anchor(filters, before, older=True)
        rows = []
        if anchor is not None:
            further = [_beyond(b, anchor, older=True, inclusive=anchor.inclusive) for b in branches]
            rows = _take(further, filters=filters, newest_first=True, limit=size + 1)
        newer = rows[0].pk if rows and _any_beyond(branches, rows[0], filters=filters, older=False) else None
        older = rows[size - 1].pk if len(rows) > size else None
        return HistoryPage(rows=rows[:size], newer=newer, older=older, cursor={"before": before})
    rows = _take(branches, filters=filters, newest_first=True, limit=size + 1)
    return HistoryPage(rows=rows[:size], older=rows[size - 1].pk if len(rows) > size else None)


# Exports ----------------------------------------------------------------------------------


class _UtcText(Func):
    """A timestamp as ISO 8601 text in UTC, written by the database: no datetime object per cell."""

    output_field = CharField()

    def as_sql(self, compiler, connection, **extra):  # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS[.ffffff]'
        return super().as_sql(compiler, connection, template="(REPLACE(%(expressions)s, ' ', 'T') || 'Z')", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        template = "TO_CHAR(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return super().as_sql(compiler, connection, template=template, **extra)


class _SecondsBetween(Func):
    """end - start in seconds, to the millisecond (NULL while the reroute has not ended)."""

    output_field = FloatField()

    def __init__(self, end: str, start: str):
        super().__init__(F(end), F(start))

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="ROUND((JULIANDAY(%(expressions)s)) * 86400.0, 3)",
                              arg_joiner=") - JULIANDAY(", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, arg_joiner=" - ",
                              template="ROUND(EXTRACT(EPOCH FROM (%(expressions)s))::numeric, 3)::float8", **extra)


TIME_COLUMNS = {"created_at", "started_at", "ended_at"}
TEXT_COLUMNS = [name for name in EXPORT_HEADER if name not in {"id", "handover_run_id", "attempts",
                                                               "messages_moved", "duration_seconds"}]


def _export_rows(*, filters: HistoryFilters, chunk_size: int) -> Iterator[tuple]:
    """Each filtered reroute as a tuple in EXPORT_HEADER's order, read through a server-side cursor
    in chunks (constant memory), times already ISO 8601 text in UTC."""
    texts = {f"{name}_text": _UtcText(name) for name in TIME_COLUMNS}
    columns = [f"{name}_text" if name in TIME_COLUMNS else name for name in EXPORT_COLUMNS]
    reroutes = history_filtered(filters=filters).annotate(
        **texts, seconds_taken=_SecondsBetween("ended_at", "created_at"))
    return reroutes.values_list(*columns, "seconds_taken").iterator(chunk_size=chunk_size)


def export_csv(*, filters: HistoryFilters, chunk_size: int = EXPORT_CHUNK_SIZE) -> Iterator[str]:
    """The filtered history as CSV: a header row, then one row per reroute, yielded chunk_size rows at a time.

    Empty values are empty cells; every text cell is checked for a formula start.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_HEADER)
    text_positions = [EXPORT_HEADER.index(name) for name in TEXT_COLUMNS]
    batch = []
    for row in _export_rows(filters=filters, chunk_size=chunk_size):
        row = list(row)
        for i in text_positions:
            value = row[i]
            if value and value[0] in FORMULA_STARTS:
                row[i] = "'" + value  # read as text, not run as a formula
        batch.append(row)
        if len(batch) == chunk_size:
            writer.writerows(batch)
            batch.clear()
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(batch)
    yield buffer.getvalue()


def export_jsonl(*, filters: HistoryFilters, chunk_size: int = EXPORT_CHUNK_SIZE) -> Iterator[str]:
    """The filtered history as JSON lines: one object per reroute (keys as EXPORT_HEADER), chunk_size at a time."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines = []
    for row in _export_rows(filters=filters, chunk_size=chunk_size):
        lines.append(encode(dict(zip(EXPORT_HEADER, row))))
        if len(lines) == chunk_size:
            lines.append("")
            yield "\n".join(lines)
            lines = []
    if lines:
        lines.append("")
    yield "\n".join(lines)


# One reroute's story ------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsRow:
    label: str
    before: object
    after: object


@dataclass(frozen=True)
class RerouteStory:
    events: list[RerouteEvent]
    stats: list[StatsRow] = field(default_factory=list)
    reply_json: str = ""
    waited_seconds: float = 0.0
    not_started: str = ""  # said of a reroute still queued NOT_STARTED_NOTICE_AFTER after it was asked for


# A worker takes a reroute in milliseconds (50 ms on the filesystem broker); queued longer than this, the
# page says that no worker has started it.
NOT_STARTED_NOTICE_AFTER = timedelta(seconds=5)


STATS_LABELS = [("total", "Queued messages"), ("pending", "Pending"), ("processing", "Processing"),
                ("scheduled", "Scheduled"), ("status", "Queue status")]


def _event_facts(detail: dict | None) -> list[str]:
    """The parts of an event's detail a reader needs, in words."""
    if not isinstance(detail, dict):
        return []
    facts = []
    if detail.get("status"):
        facts.append(f"HTTP {detail['status']}")
    if detail.get("error"):
        facts.append(f"error {detail['error']}")
    if detail.get("ms") is not None:
        facts.append(f"took {detail['ms']} ms")
    if detail.get("wait_seconds") is not None:
        facts.append(f"waits {detail['wait_seconds']} s")
    if detail.get("detail"):
        facts.append(f"SparkBot said: {detail['detail']}")
    return facts


def reroute_story(*, reroute: Reroute) -> RerouteStory:
    """The timeline with each attempt's calls and waits, the queue before and after, and SparkBot's reply.

    Secrets were removed before anything was stored; they are removed here once more, so
    that no page can show the key even if an old row held it.
    """
    key = settings.SPARKBOT_API_KEY
    events, waited = [], 0.0
    for event in reroute.events.order_by("id"):
        event.detail = redact(event.detail, key)
        event.facts = _event_facts(event.detail)
        if isinstance(event.detail, dict) and isinstance(event.detail.get("wait_seconds"), (int, float)):
            waited += event.detail["wait_seconds"]
        events.append(event)
    before, after = reroute.stats_before or {}, reroute.stats_after or {}
    stats = [StatsRow(label, before.get(name), after.get(name)) for name, label in STATS_LABELS] \
        if (before or after) else []
    reply = redact(reroute.api_reply, key)
    reply_json = json.dumps(reply, indent=2, ensure_ascii=False, sort_keys=True) if reply is not None else ""
    return RerouteStory(events=events, stats=stats, reply_json=reply_json, waited_seconds=round(waited, 3),
                        not_started=_not_started(reroute, events))


def _not_started(reroute: Reroute, events: list[RerouteEvent]) -> str:
    """Said of a reroute still queued a while after it was asked for, unless its timeline already says why:
    the task queue was down when it was asked for."""
    waiting = timezone.now() - reroute.created_at
    if reroute.status != Reroute.Status.QUEUED or waiting < NOT_STARTED_NOTICE_AFTER:
        return ""
    if events and events[-1].kind == RerouteEvent.Kind.QUEUE_DOWN:
        return ""
    return sentences.not_started(int(waiting.total_seconds()))


def reroutes_of_devices(*, device_ids: list[str], exclude: int | None = None, limit: int = 10) -> list[Reroute]:
    """The newest reroutes that have any of these devices as source or target (one index walk per column)."""
    reroutes = Reroute.objects.only(*PAGE_COLUMNS)
    if exclude is not None:
        reroutes = reroutes.exclude(pk=exclude)
    branches = [reroutes.filter(**{f"{side}_id": device}) for device in dict.fromkeys(device_ids)
                for side in ("source", "target")]
    return _take(branches, filters=HistoryFilters(), newest_first=True, limit=limit)
