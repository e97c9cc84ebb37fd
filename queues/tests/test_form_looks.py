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


LONG_NAME = "Night_shift_handover_for_the_Lisbon_and_Zurich_support_desks_when_the_evening_team_leaves_2026_v2"


def test_a_long_name_without_spaces_wraps_inside_the_page(browser_as, live_server, admin_user, sandbox, page):
    from queues import handovers
    from queues.models import HandoverPlan, Rule
    from sparkbot_sandbox.seed import SALES_1, SALES_4

    plan = handovers.plan_save(plan=HandoverPlan(name=LONG_NAME), pairs=[(SALES_1, SALES_4)], user=None)
    rule = Rule.objects.create(name=LONG_NAME, owner_username="admin", sources=[SALES_1], targets=[SALES_4])
    browser_as("admin")
    page.set_viewport_size({"width": 1280, "height": 900})
    wider = []
    for path in ("/handovers/", "/rules/", f"/rules/{rule.pk}/", f"/handovers/plans/{plan.pk}/"):
        page.goto(f"{live_server.url}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 1280:
            wider.append(f"{path}: {width} px")
    assert wider == [], "pages wider than the 1280 px window: " + "; ".join(wider)


def test_a_phone_sized_window_reaches_every_link_of_the_top_bar_without_scrolling_sideways(
        browser_as, live_server, admin_user, sandbox, page):
    browser_as("admin")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/reroute/")
    outside = page.locator("header.top a, header.top button").evaluate_all(
        "links => links.filter(l => l.getBoundingClientRect().right > 390).map(l => l.textContent.trim())")
    assert outside == [], f"beyond the right edge of a 390 px window: {outside}"
