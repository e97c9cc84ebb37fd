"""Reads of the fleet monitor's numbers: the overview's pages and summary, a number's last 7 days,
and the reroutes that touched it.

The overview sorts every listed number by attention (cannot deliver and holding messages, then
cannot deliver, then by depth) and pages it with OFFSET: a fleet is thousands of rows at most,
sorted in memory by the database in about a millisecond, and a keyset cursor would not hold still
anyway while the monitor changes depths under it. Its sparklines need no snapshot query: the
monitor keeps each number's day in `Number.depth_24h`; the reroutes marked on them are one query
per page. queues/charts.py draws the charts. Nothing here writes, and nothing here calls SparkBot.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum, Window
from django.db.models.functions import Lag, Trunc
from django.utils import timezone

from .models import MonitorState, Number, NumberSnapshot, Reroute

PAGE_SIZE = 50
DAY = timedelta(days=1)
WINDOW_DAYS = 7
STATE_CHANGES_SHOWN = 200
CHART_REROUTES_SHOWN = 500
REROUTES_PAGE_SIZE = 20
PHONE_LIKE = re.compile(r"[\d\s+\-().]*\d[\d\s+\-().]*")


# Filters, summary and the overview's page ---------------------------------------------------


@dataclass(frozen=True)
class FleetFilters:
    cannot_deliver: bool = False
    has_messages: bool = False
    q: str = ""  # alias or phone, as typed (trimmed)


@dataclass(frozen=True)
class FleetSummary:
    numbers: int
    cannot_deliver: int
    cannot_deliver_messages: int
    holding: int
    messages: int
    unread: int = 0  # numbers whose queue the monitor has not read yet: left out of the sums

    @property
    def headline(self) -> str:
        """"3 numbers cannot deliver, holding 412 messages", in a support lead's words."""
        if not self.numbers:
            return "The monitor has not listed any number yet."
        if not self.cannot_deliver:
            return f"Every number can deliver ({_count(self.numbers, 'number')})."
        return (f"{_count(self.cannot_deliver, 'number')} cannot deliver, "
                f"holding {_count(self.cannot_deliver_messages, 'message')}.")

    @property
    def detail(self) -> str:
        if not self.numbers:
            return ""
        if self.unread == self.numbers:
            return f"No queue is read yet: the queues of all {_count(self.numbers, 'number')} are still to be read."
        if not self.holding:
            sums = f"No queued messages on any of the {_count(self.numbers - self.unread, 'number')} read."
        else:
            sums = (f"{self.holding:,} of {_count(self.numbers, 'number')} hold messages, "
                    f"{_count(self.messages, 'message')} in all.")
        if self.unread:
            sums += f" The queues of {_count(self.unread, 'number')} are not read yet: these figures leave them out."
        return sums


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def fleet_summary() -> FleetSummary:
    """One aggregate over the listed numbers."""
    cannot = Q(can_deliver=False)
    holding = Q(queue_total__gt=0)
    found = Number.objects.filter(listed=True).aggregate(
        numbers=Count("pk"), cannot_deliver=Count("pk", filter=cannot),
        cannot_deliver_messages=Sum("queue_total", filter=cannot & holding, default=0),
        holding=Count("pk", filter=holding), messages=Sum("queue_total", filter=holding, default=0),
        unread=Count("pk", filter=Q(read_at__isnull=True)),
    )
    return FleetSummary(**found)


def fleet_filtered(*, filters: FleetFilters) -> QuerySet:
    """The listed numbers the filters let through, most in need of attention first."""
    numbers = Number.objects.filter(listed=True)
    if filters.cannot_deliver:
        numbers = numbers.filter(can_deliver=False)
    if filters.has_messages:
        numbers = numbers.filter(queue_total__gt=0)
    if filters.q:
        match = Q(alias__icontains=filters.q) | Q(device_id=filters.q.lower())  # an alias's part, or an id
        if PHONE_LIKE.fullmatch(filters.q):  # "+44 7700-900 003" finds +447700900003
            match |= Q(phone__contains="".join(ch for ch in filters.q if ch.isdigit() or ch == "+"))
        numbers = numbers.filter(match)
    # can_deliver false first; within each, the deepest queue first (unknown last): cannot deliver and
    # holding messages, then cannot deliver, then by depth.
    return numbers.order_by("can_deliver", F("queue_total").desc(nulls_last=True), "alias", "device_id")


@dataclass(frozen=True)
class FleetRow:
    number: Number
    markers: list[Marker]  # the reroutes that touched it in the last 24 hours, oldest first
    state_since: str  # "14:05 UTC (3 h 20 min)"
    read_age: str  # "40 s ago", "" when never read


@dataclass(frozen=True)
class FleetPage:
    rows: list[FleetRow]
    number: int
    pages: int
    matched: int
    size: int
    now: datetime

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None

    @property
    def first_shown(self) -> int:
        return (self.number - 1) * self.size + 1

    @property
    def last_shown(self) -> int:
        return self.first_shown + len(self.rows) - 1


def fleet_page(*, filters: FleetFilters, page: int = 1, size: int = PAGE_SIZE,
               now: datetime | None = None) -> FleetPage:
    """One page of the filtered overview: each number with the reroutes that touched it today and its ages
    in words (queues/charts.py draws its sparkline)."""
    now = now or timezone.now()
    numbers = fleet_filtered(filters=filters)
    matched = numbers.count()
    pages = max(1, -(-matched // size))
    start = (page - 1) * size
    found = list(numbers[start:start + size]) if start < matched else []
    markers = _day_markers([n.device_id for n in found], now=now)
    rows = [FleetRow(number=n, markers=markers.get(n.device_id, []),
                     state_since=since_words(n.state_since, now), read_age=ago(n.read_at, now) if n.read_at else "")
            for n in found]
    return FleetPage(rows=rows, number=page, pages=pages, matched=matched, size=size, now=now)


# The monitor's own state, for the page ------------------------------------------------------


@dataclass(frozen=True)
class MonitorHealth:
    ran: bool
    cycle_age: str = ""
    devices_age: str = ""
    paused_until: datetime | None = None
    pause_reason: str = ""
    silent: bool = False  # no cycle for a while: is the worker (with beat) running?

    @property
    def paused(self) -> bool:
        return bool(self.pause_reason)


def monitor_health(*, now: datetime | None = None) -> MonitorHealth:
    now = now or timezone.now()
    state = MonitorState.objects.filter(pk=MonitorState.SINGLETON).first()  # a page never creates it
    if state is None or state.cycle_ended_at is None:
        return MonitorHealth(ran=False)
    paused = state.paused_until is not None and state.paused_until > now
    quiet_for = (now - state.cycle_ended_at).total_seconds()
    return MonitorHealth(
        ran=True, cycle_age=ago(state.cycle_ended_at, now),
        devices_age=ago(state.devices_read_at, now) if state.devices_read_at else "",
        paused_until=state.paused_until if paused else None,
        pause_reason=(state.pause_reason or "SparkBot asked the monitor to wait.") if paused else "",
        silent=quiet_for > max(3 * settings.MONITOR_CYCLE_SECONDS, 60),
    )


def poll_seconds() -> int:
    """How often an open overview asks for news: once a monitor cycle, between 1 and 30 seconds."""
    return int(min(max(round(settings.MONITOR_CYCLE_SECONDS), 1), 30))


# A number's page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateChange:
    at: datetime
    account_status: str
    session_status: str
    lasted: str  # "2 h 5 min", or "until now"
    before_window: bool = False  # the state the window opened with, first seen before it


@dataclass(frozen=True)
class DepthHour:
    hour: datetime
    highest: int
    lowest: int


@dataclass(frozen=True)
class DepthDay:
    day: date
    highest: int
    lowest: int
    last: int


@dataclass
class NumberWeek:
    number: Number
    changes: list[StateChange]
    changes_cut: bool
    hours: list[DepthHour]
    days: list[DepthDay]
    markers: list[Marker]  # the reroutes that touched it in the window, oldest first (at most CHART_REROUTES_SHOWN)
    since: datetime
    now: datetime


def number_week(*, number: Number, now: datetime | None = None) -> NumberWeek:
    """A number's last WINDOW_DAYS: its state changes, its queue depth per hour, the reroutes that touched it
    (queues/charts.py draws them)."""
    now = now or timezone.now()
    since = now - timedelta(days=WINDOW_DAYS)
    changes, cut = state_changes(number=number, since=since, now=now)
    hours = depth_hours(number=number, since=since)
    markers = _markers(Reroute.objects.filter(Q(source_id=number.device_id) | Q(target_id=number.device_id)),
                       since=since, limit=CHART_REROUTES_SHOWN).get(number.device_id, [])
    return NumberWeek(number=number, changes=changes, changes_cut=cut, hours=hours, days=_days(hours),
                      markers=markers, since=since, now=now)


def state_changes(*, number: Number, since: datetime, now: datetime) -> tuple[list[StateChange], bool]:
    """The changes of account or session status since `since`, newest first (at most STATE_CHANGES_SHOWN),
    and whether older ones were left out. Found by the database (LAG over the snapshots in time order)."""
    snapshots = NumberSnapshot.objects.filter(number=number, at__gte=since).annotate(
        previous_account=Window(Lag("account_status"), order_by=F("at").asc()),
        previous_session=Window(Lag("session_status"), order_by=F("at").asc()),
    )
    changed = snapshots.filter(Q(previous_account__isnull=True) | ~Q(previous_account=F("account_status"))
                               | ~Q(previous_session=F("session_status")))
    newest = changed.order_by("-at").values_list("at", "account_status", "session_status")
    rows = list(newest[:STATE_CHANGES_SHOWN + 1])
    cut = len(rows) > STATE_CHANGES_SHOWN
    rows = rows[:STATE_CHANGES_SHOWN]
    changes, until = [], now
    for at, account, session in rows:
        changes.append(StateChange(at, account, session, "until now" if until is now else duration(until - at)))
        until = at
    if cut:
        return changes, cut
    before = (NumberSnapshot.objects.filter(number=number, at__lt=since).order_by("-at", "-id")
              .values_list("account_status", "session_status").first())
    if before is None:  # the oldest row is the first time the monitor saw this number
        return changes, cut
    if changes and (changes[-1].account_status, changes[-1].session_status) == before:
        changes.pop()  # not a change: the window opened in this state
    ended = changes[-1].at if changes else None
    opened = StateChange(since, *before, duration(ended - since) if ended else "until now", before_window=True)
    return [*changes, opened], cut


def depth_hours(*, number: Number, since: datetime) -> list[DepthHour]:
    """The number's queue depth per hour (highest and lowest reading), downsampled by the database."""
    buckets = (NumberSnapshot.objects.filter(number=number, at__gte=since, queue_total__isnull=False)
               .annotate(hour=Trunc("at", "hour", tzinfo=dt_timezone.utc)).values("hour")
               .annotate(highest=Max("queue_total"), lowest=Min("queue_total")).order_by("hour"))
    return [DepthHour(hour=b["hour"], highest=b["highest"], lowest=b["lowest"]) for b in buckets]


def _days(hours: list[DepthHour]) -> list[DepthDay]:
    days: dict = {}
    zone = timezone.get_current_timezone()
    for h in hours:
        day = h.hour.astimezone(zone).date()
        if day in days:
            first = days[day]
            days[day] = DepthDay(first.day, max(first.highest, h.highest), min(first.lowest, h.lowest), h.highest)
        else:
            days[day] = DepthDay(day, h.highest, h.lowest, h.highest)
    return sorted(days.values(), key=lambda d: d.day, reverse=True)


# Reroute markers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    reroute_id: int
    at: datetime
    origin: str
    direction: str  # "to" (the number was the source) or "from" (the target)
    other: str  # the other number's alias
    status: str

    @property
    def origin_label(self) -> str:
        return origin_label(self.origin)

    def words(self, today: date) -> str:
        return (f"Reroute #{self.reroute_id}, {self.origin_label}, {clock(self.at, today=today)}: {self.direction} "
                f"{self.other} ({self.status})")


ORIGIN_WORDS = {"web": "by hand"}


def origin_label(origin: str) -> str:
    """How a reroute's origin is named on the charts: "by hand", else the origin's display name."""
    if origin in ORIGIN_WORDS:
        return ORIGIN_WORDS[origin]
    return dict(Reroute.Origin.choices).get(origin) or origin.replace("_", " ").capitalize()


def _day_markers(device_ids: list[str], *, now: datetime) -> dict[str, list[Marker]]:
    if not device_ids:
        return {}
    touching = Reroute.objects.filter(Q(source_id__in=device_ids) | Q(target_id__in=device_ids))
    return _markers(touching, since=now - DAY, limit=None, only=set(device_ids))


def _markers(reroutes: QuerySet, *, since: datetime, limit: int | None,
             only: set[str] | None = None) -> dict[str, list[Marker]]:
    """The reroutes since `since`, oldest first, as markers of each number they touched."""
    rows = (reroutes.filter(created_at__gte=since).order_by("-created_at")
            .values_list("id", "created_at", "origin", "source_id", "source_alias", "target_id", "target_alias",
                         "status"))
    if limit is not None:
        rows = rows[:limit]
    found: dict[str, list[Marker]] = defaultdict(list)
    for pk, at, origin, source, source_alias, target, target_alias, status in reversed(list(rows)):
        if only is None or source in only:
            found[source].append(Marker(pk, at, origin, "to", target_alias, status))
        if only is None or target in only:
            found[target].append(Marker(pk, at, origin, "from", source_alias, status))
    return found


# Words for times -----------------------------------------------------------------------------


def duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def ago(then: datetime, now: datetime) -> str:
    return f"{duration(now - then)} ago"


def clock(at: datetime, now: datetime | None = None, *, today: date | None = None) -> str:
    """"14:05 UTC" today, "24 Nov 14:05 UTC" before: a time labelled with its zone."""
    local = at.astimezone(timezone.get_current_timezone())
    today = today or timezone.localtime(now or timezone.now()).date()
    shown = f"{local:%H:%M}" if local.date() == today else f"{local.day} {local:%b %H:%M}"
    return f"{shown} {local.tzname()}"


def since_words(at: datetime, now: datetime) -> str:
    return f"{clock(at, now)} ({duration(now - at)})"
