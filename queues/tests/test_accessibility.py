"""An axe-core scan (axe-playwright-python, its axe.min.js from the package: no CDN) of every page of the app,
in Chromium: no serious or critical violation, including with a picker open, a preview and form errors shown."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from queues import devices, handovers, monitor, services
from queues.models import HandoverPlan
from sparkbot_sandbox.seed import SALES_1, SALES_3, SALES_4

pytestmark = [pytest.mark.browser, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]
GRAVE = {"serious", "critical"}


def grave_violations(page) -> list[str]:
    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
            for v in results.response["violations"] if v["impact"] in GRAVE]


@pytest.fixture
def site(sandbox, admin_user, settings, monkeypatch):
    """A reroute that ended, a plan and a run that ended, and the monitor's readings of every number."""
    from queues import dispatch

    settings.MONITOR_CALLS_PER_MINUTE = 600
    monitor.monitor_cycle()
    device_list = devices.device_list()
    with monkeypatch.context() as held_back:  # run here, not by a worker another test may have started
        held_back.setattr(dispatch, "reroute_attempt", lambda *args, **kwargs: None)
        held_back.setattr(dispatch, "handover_advance", lambda *args, **kwargs: None)
        reroute = services.reroute_request(source=device_list.get(SALES_3), target=device_list.get(SALES_4),
                                           note="axe", user=admin_user)
        services.reroute_execute(reroute_id=reroute.pk)
        plan = handovers.plan_save(plan=HandoverPlan(name="Night"), pairs=[(SALES_1, SALES_4)], user=admin_user)
        run = handovers.handover_start(plan=plan, user=admin_user)
        handovers.handover_cancel(run=run, user=admin_user)
        handovers.handover_advance(run_id=run.pk)
    return {"reroute": reroute.pk, "plan": plan.pk, "run": run.pk, "number": SALES_3}


PAGES = [
    "/reroute/", "/reroute/?source={number}", "/reroutes/{reroute}/", "/history/", "/history/?status=nope",
    "/handovers/", "/handovers/plans/new/", "/handovers/plans/{plan}/", "/handovers/plans/{plan}/delete/",
    "/handovers/runs/{run}/", "/accounts/password/", "/accounts/password/done/", "/numbers/", "/numbers/{number}/",
    "/rules/", "/rules/new/", "/account/tokens/", "/account/tokens/all/", "/notifications/",
    "/notifications/webhooks/new/", "/notifications/emails/new/", "/notifications/deliveries/",
]


def test_it_finds_no_serious_violation_on_any_page(browser_as, live_server, site, page):
    page.goto(f"{live_server.url}/accounts/login/")
    assert grave_violations(page) == [], "/accounts/login/"
    browser_as("admin")
    for path in PAGES:
        response = page.goto(f"{live_server.url}{path.format(**site)}")
        assert response.ok, path
        page.wait_for_load_state("networkidle")
        assert grave_violations(page) == [], path
    page.evaluate("() => document.querySelector('main').append(document.createElement('select'))")
    assert any(found.startswith("select-name (critical)") for found in grave_violations(page))  # the scan sees


def test_it_finds_no_serious_violation_in_the_pages_live_states(browser_as, live_server, site, page):
    browser_as("admin")
    source = page.get_by_role("combobox", name="WhatsApp number", exact=True)
    source.fill("sales")
    source.press("ArrowDown")
    assert grave_violations(page) == [], "the route page with a picker open"
    source.press("Enter")
    target = page.get_by_role("combobox", name="Target WhatsApp number")
    target.fill("café")
    target.press("ArrowDown")
    target.press("Enter")
    expect(page.locator("#reroute-preview .warning")).to_have_count(1)
    assert grave_violations(page) == [], "the route page with a preview and a warning"
    page.get_by_role("button", name="Reroute").click()
    expect(page.locator("section.status")).to_be_visible()
    assert grave_violations(page) == [], "the route page with a reroute's status"

    page.goto(f"{live_server.url}/handovers/plans/{site['plan']}/")
    page.get_by_label("Paste moves, one per line").fill("Sales-1, Nobody")
    page.get_by_role("button", name="Add the pasted moves").click()
    expect(page.locator("#paste-errors")).to_be_visible()
    page.wait_for_load_state("networkidle")  # the rows are swapped in after the errors show
    page.get_by_label("WhatsApp number 1", exact=True).fill("Nobody")
    page.get_by_role("button", name="Save plan").first.click()
    expect(page.locator(".row-error")).to_have_count(1)
    row = page.get_by_role("combobox", name="Target WhatsApp number 2")
    row.fill("sales")
    row.press("ArrowDown")
    assert grave_violations(page) == [], "the plan editor with errors and a picker open"
