from django import template
from django.utils import dateformat, timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from .. import pickers

register = template.Library()


@register.simple_tag
def number_options(choices, form, field_name: str):
    """The pickers' cached <option> list (state and queue depth) with the user's choice selected."""
    chosen = form.selected(field_name) if form is not None else ""
    return mark_safe(pickers.with_selected(choices.options_html, chosen))


@register.filter
def zoned(value, fmt: str = "j M Y H:i:s"):
    """A time in the current time zone, labelled with that zone: <time datetime="…">25 Nov 2026 14:03:11 UTC</time>."""
    if not value:
        return ""
    local = timezone.localtime(value)
    return format_html('<time datetime="{}">{} {}</time>', value.isoformat(), dateformat.format(local, fmt),
                       local.tzname())


@register.simple_tag
def plan_rows(shown):
    """A plan editor's rows: built here because a template loop costs ~0.2 ms a row, and plans hold hundreds."""
    return mark_safe("".join(_plan_row(item) for item in shown))


def _field(item: dict, name: str, label: str, text: str, error: str) -> str:
    field_id = f"pairs-{item['index']}-{name}"
    described = f' aria-invalid="true" aria-describedby="{field_id}-error"' if error else ""
    focus = " autofocus" if item["focus"] == "source" and name == "source" else ""
    message = f'<p id="{field_id}-error" class="error small">{escape(error)}</p>' if error else ""
    return (f'<td><input type="text" id="{field_id}" name="{field_id}" value="{escape(text)}" list="numbers" '
            f'data-picker autocomplete="off" aria-label="{label} {item["number"]}"{described}{focus}>{message}</td>')


def _button(item: dict, op: str, text: str, label: str, *, disabled: bool = False, link: bool = False) -> str:
    extra = (" disabled" if disabled else "") + (" autofocus" if item["focus"] == op else "")
    css = ' class="link"' if link else ""
    return (f'<button type="submit" name="op" value="{op}-{item["index"]}" formnovalidate{css} '
            f'aria-label="{label} row {item["number"]}{"" if op == "remove" else " " + op}"{extra}>{text}</button>')


def _plan_row(item: dict) -> str:
    row = item["row"]
    actions = "" if item["blank"] else (
        _button(item, "up", "↑", "Move", disabled=item["first"])
        + _button(item, "down", "↓", "Move", disabled=item["last"])
        + _button(item, "remove", "Remove", "Remove", link=True))
    css = ' class="row-error"' if row.has_errors else ""
    return (f'<tr{css}><th scope="row">{item["number"]}</th>'
            + _field(item, "source", "WhatsApp number", row.source_text, row.source_error)
            + _field(item, "target", "Target WhatsApp number", row.target_text, row.target_error)
            + f'<td class="row-actions">{actions}</td></tr>\n')
