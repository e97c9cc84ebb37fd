from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def device_options(devices, form, field_name: str):
    """The cached <option> list with the user's choice selected (device ids are plain hex)."""
    html = devices.options_html()
    chosen = form.selected(field_name) if form is not None else ""
    if chosen and chosen.isalnum():
        html = html.replace(f'value="{chosen}"', f'value="{chosen}" selected', 1)
    return mark_safe(html)
