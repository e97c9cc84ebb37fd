"""Helpers for the browser journeys: choosing a number with the searchable picker, by keyboard only."""

from playwright.sync_api import expect


def choose_number(page, label: str, search: str, *, expected: str | None = None):
    """Type `search` into the picker labelled `label`, move to the first match with Down, choose it with Enter.
    Returns the picker's box, which then shows the chosen number (starting with `expected`, or `search`)."""
    box = page.get_by_label(label, exact=True)
    box.fill(search)
    expect(box).to_have_attribute("aria-expanded", "true")
    box.press("ArrowDown")
    active = page.locator(f"#{box.get_attribute('aria-activedescendant')}")
    expect(active).to_contain_text(expected or search)
    box.press("Enter")
    expect(box).to_have_attribute("aria-expanded", "false")
    return box
