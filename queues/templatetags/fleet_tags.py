"""The overview's table rows, built here (a template loop costs ~0.2 ms a row, and the overview is polled
by every open tab), and the charts of queues/charts.py. Every text SparkBot gave us (aliases, phones,
statuses) is escaped."""

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ..charts import sparkline_of_this_minute, week_chart
from ..fleet import FleetPage, FleetRow, NumberWeek

register = template.Library()


@register.simple_tag
def fleet_rows(page: FleetPage, number_url: str, reroute_url: str) -> SafeString:
    """<tr>s of the overview: number_url is the numbers' base ("/numbers/"), reroute_url the route page's."""
    return mark_safe("".join(_row(row, page, number_url, reroute_url) for row in page.rows))


@register.simple_tag
def number_week_chart(week: NumberWeek) -> SafeString:
    return week_chart(week)


def _row(row: FleetRow, page: FleetPage, number_url: str, reroute_url: str) -> str:
    number = row.number
    sparkline = sparkline_of_this_minute(number, row.markers, now=page.now)
    device, alias = escape(number.device_id), escape(number.alias)
    phone = escape(number.phone) if number.phone else "no phone"
    css = "" if number.can_deliver else ' class="cannot-deliver"'
    stuck = "" if number.can_deliver else ' <span class="badge badge-failed">cannot deliver</span>'
    depth = "—" if number.queue_total is None else number.queue_total
    read = f"read {row.read_age}" if row.read_age else "not read yet"
    problem = f'<br><span class="error small">{escape(number.read_problem)}</span>' if number.read_problem else ""
    # the links' ids let htmx give the keyboard focus back to them after each poll of the page
    return (
        f'<tr id="number-{device}"{css}>'
        f'<th scope="row"><a id="number-link-{device}" href="{number_url}{device}/">{alias}</a>'
        f'<br><span class="muted small">{phone}</span></th>'
        f'<td>{escape(number.account_status)}</td>'
        f'<td><span class="session">{escape(number.session_status)}</span>{stuck}<br>'
        f'<span class="muted small">since {escape(row.state_since)}</span></td>'
        f'<td class="num"><span class="depth">{depth}</span><br><span class="muted small">{read}</span>{problem}</td>'
        f'<td class="chart-cell">{sparkline}</td>'
        f'<td><a id="reroute-from-{device}" href="{reroute_url}?source={device}">Reroute from here'
        f'<span class="visually-hidden"> ({alias})</span></a></td></tr>\n'
    )
