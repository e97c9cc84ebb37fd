"""Queue-depth charts drawn as inline SVG on the server: a number's sparkline of the last 24 hours (the
overview) and its chart of the last 7 days (its page), each with a marker for every reroute that
touched it, by origin (its own shape and colour), a <title> per marker and a text alternative for
the whole chart. No JavaScript is needed to see them; the colours are in static/queues/app.css.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from datetime import timezone as dt_timezone

from django.conf import settings
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .fleet import DAY, WINDOW_DAYS, Marker, NumberWeek, origin_label
from .models import Number, Reroute
from .monitor import SLOT_SECONDS

# Each origin has its own shape as well as its own colour (app.css), so that no one needs colour to tell them.
ORIGIN_SHAPES = {"web": "circle", "handover": "square", "rule": "triangle", "api": "diamond", "cli": "bar"}


def marker_legend() -> list[tuple[str, str, SafeString]]:
    """(origin, label, a small SVG of its marker) for every origin the charts know of."""
    origins = list(dict.fromkeys([*Reroute.Origin.values, *ORIGIN_SHAPES]))
    return [(o, origin_label(o), mark_safe(
        f'<svg class="legend-mark" width="10" height="10" viewBox="-5 0 10 10" aria-hidden="true">'
        f'<g class="mark mark-{_css_name(o)}">{_shape(o, 0.0)}</g></svg>')) for o in origins]


_sparklines: dict[tuple, SafeString] = {}
_sparklines_minute: list[int] = [0]


def sparkline_of_this_minute(number: Number, markers: list[Marker], *, now: datetime) -> SafeString:
    """The sparkline drawn up to the start of this minute, drawn once a minute per process: every open
    overview polls it, and a day 144 pixels wide moves a tenth of a pixel a minute."""
    minute = int(now.timestamp()) // 60
    if _sparklines_minute[0] != minute:
        _sparklines.clear()
        _sparklines_minute[0] = minute
    key = (number.pk, tuple(tuple(point) for point in number.depth_24h or ()),
           tuple((m.reroute_id, m.status, m.other) for m in markers))
    drawn = _sparklines.get(key)
    if drawn is None:
        minute_start = datetime.fromtimestamp(minute * 60, tz=dt_timezone.utc)
        drawn = _sparklines[key] = sparkline(number, markers, now=minute_start)
    return drawn


def sparkline(number: Number, markers: list[Marker], *, now: datetime) -> SafeString:
    """The number's queue depth over the last 24 hours (the monitor's half-hour highs), with the
    reroutes that touched it, as an inline SVG with a text alternative."""
    end = now.timestamp()
    start = end - DAY.total_seconds()
    series = []
    for slot, depth in number.depth_24h or []:
        at = slot * SLOT_SECONDS + SLOT_SECONDS / 2  # the middle of its half hour
        if at > start:
            series.append((min(at, end), depth))
    return _svg(series=series, markers=markers, start=start, end=end, width=144, height=36, css="spark",
                label_id=f"spark-{number.pk}", gap=3660.0, now=now,
                summary=_chart_words(series, markers, "over the last 24 hours", now))


MARK_ZONE = 9  # pixels at the top where the reroute markers stand


def _svg(*, series: list[tuple[float, int]], markers: list[Marker], start: float, end: float, now: datetime,
         width: int, height: int, css: str, label_id: str, summary: str, gap: float,
         day_ticks: bool = False) -> SafeString:
    """A chart of (epoch seconds, depth) from start to end, cut where readings are more than `gap` seconds
    apart, with a marker for each reroute: an <svg role="img"> whose <title> says it all in words."""
    x_scale = width / ((end - start) or 1.0)
    top, bottom = MARK_ZONE + 2, height - 2
    y_scale = (bottom - top) / (max((depth for _at, depth in series), default=0) or 1)
    parts = [f'<svg class="chart {css}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-labelledby="{label_id}"><title id="{label_id}">{escape(summary)}</title>']
    if day_ticks:
        parts.append(_day_ticks(start, end, x_scale, height))
    parts.append(f'<line class="base" x1="0" y1="{bottom}" x2="{width}" y2="{bottom}"/>')
    for segment in _segments(series, gap):
        if len(segment) == 1:
            at, depth = segment[0]
            parts.append(f'<circle class="dot" cx="{(at - start) * x_scale:.1f}" cy="{bottom - depth * y_scale:.1f}" '
                         'r="1.5"/>')
        else:
            points = " ".join(f"{(at - start) * x_scale:.1f},{bottom - depth * y_scale:.1f}" for at, depth in segment)
            parts.append(f'<polyline class="line" points="{points}"/>')
    today = timezone.localtime(now).date()
    for marker in markers:
        at_x = min(max((marker.at.timestamp() - start) * x_scale, 0.0), float(width))
        parts.append(f'<g class="mark mark-{_css_name(marker.origin)}"><title>{escape(marker.words(today))}</title>'
                     f'<line x1="{at_x:.1f}" y1="{MARK_ZONE - 1}" x2="{at_x:.1f}" y2="{bottom}"/>'
                     f'{_shape(marker.origin, at_x)}</g>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _segments(series: list[tuple[float, int]], gap: float) -> list[list[tuple[float, int]]]:
    """The series cut where readings are missing for longer than `gap` seconds (the monitor was not reading)."""
    segments: list[list] = []
    for point in series:
        if segments and point[0] - segments[-1][-1][0] <= gap:
            segments[-1].append(point)
        else:
            segments.append([point])
    return segments


def _day_ticks(start: float, end: float, x_scale: float, height: int) -> str:
    ticks = []
    first = datetime.fromtimestamp(start, tz=dt_timezone.utc)
    day = timezone.localtime(first).replace(hour=0, minute=0, second=0, microsecond=0) + DAY
    while day.timestamp() < end:
        at_x = (day.timestamp() - start) * x_scale
        ticks.append(f'<line class="tick" x1="{at_x:.1f}" y1="0" x2="{at_x:.1f}" y2="{height}"/>'
                     f'<text class="tick-label" x="{at_x + 2:.1f}" y="{height - 4}">{day:%a %d}</text>')
        day = timezone.localtime(day + DAY).replace(hour=0, minute=0, second=0, microsecond=0)
    return "".join(ticks)


def _shape(origin: str, x: float) -> str:
    shape = ORIGIN_SHAPES.get(origin, "circle")
    if shape == "square":
        return f'<rect x="{x - 3:.1f}" y="1" width="6" height="6"/>'
    if shape == "triangle":
        return f'<path d="M{x:.1f},0.5L{x + 3.5:.1f},7L{x - 3.5:.1f},7Z"/>'
    if shape == "diamond":
        return f'<path d="M{x:.1f},0L{x + 4:.1f},4L{x:.1f},8L{x - 4:.1f},4Z"/>'
    if shape == "bar":
        return f'<rect x="{x - 1.5:.1f}" y="0" width="3" height="8"/>'
    return f'<circle cx="{x:.1f}" cy="4" r="3.2"/>'


def _css_name(origin: str) -> str:
    return "".join(ch for ch in origin.lower() if ch.isalnum() or ch == "-") or "other"


def _chart_words(series: list[tuple[float, int]], markers: list[Marker], period: str, now: datetime) -> str:
    """What the chart shows, for screen readers (and as the chart's tooltip)."""
    if series:
        depths = [depth for _at, depth in series]
        words = f"Queue depth {period}: highest {max(depths):,}, latest {depths[-1]:,}."
    else:
        words = f"No queue reading {period}."
    if not markers:
        return f"{words} No reroute."
    kinds = Counter(m.origin_label for m in markers)
    noun = "reroute" if len(markers) == 1 else "reroutes"
    return (f"{words} {len(markers)} {noun} ({', '.join(f'{n} {label}' for label, n in kinds.items())}); "
            f"the last: {markers[-1].words(timezone.localtime(now).date())}.")


def week_chart(week: NumberWeek) -> SafeString:
    """The number's highest queue depth of each hour over the window, with its reroutes and a line a day."""
    end = week.now.timestamp()
    series = [(min(h.hour.timestamp() + 1800, end), h.highest) for h in week.hours]  # each hour at its middle
    gap = 3600 + 60 * settings.MONITOR_HEARTBEAT_MINUTES  # readings come at least every heartbeat
    return _svg(series=series, markers=week.markers, start=week.since.timestamp(), end=end, now=week.now,
                width=672, height=140, css="week", label_id=f"week-{week.number.pk}", gap=gap, day_ticks=True,
                summary=_chart_words(series, week.markers, f"over the last {WINDOW_DAYS} days", week.now))
