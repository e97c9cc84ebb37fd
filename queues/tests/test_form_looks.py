"""In Chromium: every box a person types into looks the same on every form (border, padding, font). The
boxes of a plan's table of moves are smaller on purpose: a plan holds up to 1,000 rows."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FORM_PAGES = ["/reroute/", "/history/", "/numbers/", "/handovers/plans/new/", "/rules/new/", "/account/tokens/",
              "/notifications/webhooks/new/", "/notifications/emails/new/", "/accounts/password/"]
TYPED = "input:not([type=checkbox]):not([type=radio]):not([type=hidden]):not([type=file]):not([type=submit])"
LOOK = """box => { const s = getComputedStyle(box);
    return [s.borderTopWidth, s.borderTopStyle, s.borderRadius, s.paddingLeft, s.fontSize].join(" "); }"""


def test_every_typed_input_looks_like_a_text_box(browser_as, live_server, admin_user, sandbox, page):
    browser_as("admin")
    page.goto(f"{live_server.url}/reroute/")
    text_box = page.locator("textarea[name=note]").evaluate(LOOK)
    assert text_box.startswith("1px solid 6px")
    unlike = []
    for path in FORM_PAGES:
        page.goto(f"{live_server.url}{path}")
        for box in page.locator(f"main {TYPED}:visible").all():
            if box.evaluate("box => box.closest('table') !== null"):
                continue
            look = box.evaluate(LOOK)
            if look != text_box:
                unlike.append(f"{path} {box.get_attribute('name')} ({box.get_attribute('type')}): {look}")
    assert unlike == [], f"unlike the note box ({text_box}): " + "; ".join(unlike)
