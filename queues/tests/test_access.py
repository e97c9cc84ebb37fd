"""The access matrix: every URL of the site, for every kind of visitor, and its exact answer.

A cell's answer is a status code, or a path: a 302 whose Location starts with it
(SIGN_IN and ADMIN_SIGN_IN are the two sign-in pages). Add a URL to the site and
test_it_lists_every_url_of_the_site fails until the URL has its rows here.
"""

from dataclasses import dataclass, field

import pytest
from django.urls import URLResolver, get_resolver
from django.utils import timezone

from queues import devices, handovers, monitor, services
from queues.models import HandoverPlan, Reroute, Rule
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = pytest.mark.django_db

VISITORS = ["anonymous", "inactive", "no-role", "lead", "manager", "admin"]
HTMX = {"HTTP_HX_REQUEST": "true"}
SIGN_IN = "/accounts/login/"
ADMIN_SIGN_IN = "/admin/login/"
FAVICON = "/static/queues/favicon.svg"
NEW_REROUTE = {"source": SALES_1, "target": SALES_4, "note": "matrix",
               "idempotency_key": "0b0f2a0e-52c4-4d43-9d6f-d0c5c1e1a001"}


def answers(*, no_role, lead, manager=None, admin=None, signed_out=SIGN_IN):
    """One answer per visitor; a manager answers like a lead and an admin like a manager unless told."""
    manager = lead if manager is None else manager
    admin = manager if admin is None else admin
    return {"anonymous": signed_out, "inactive": signed_out, "no-role": no_role, "lead": lead,
            "manager": manager, "admin": admin}


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # {own}: a reroute the lead asked for; {other}: one someone else asked for; {event}: an event of {own}
    answers: dict
    htmx: bool = False
    data: dict = field(default_factory=dict)


ADMIN_ONLY = answers(no_role=ADMIN_SIGN_IN, lead=ADMIN_SIGN_IN, admin=200)
ADMIN_REFUSES = answers(no_role=ADMIN_SIGN_IN, lead=ADMIN_SIGN_IN, admin=403)  # the audit log is read-only
MATRIX = {
    # Sign-in, sign-out and password: open to anyone signed in, whatever their role.
    "login": [
        Row("GET", "/accounts/login/", answers(signed_out=200, no_role=200, lead=200)),
        Row("POST", "/accounts/login/", answers(signed_out=200, no_role=200, lead=200)),  # empty form: errors
    ],
    "logout": [
        Row("GET", "/accounts/logout/", answers(no_role=405, lead=405)),
        Row("POST", "/accounts/logout/", answers(no_role=SIGN_IN, lead=SIGN_IN)),
    ],
    "password_change": [
        Row("GET", "/accounts/password/", answers(no_role=200, lead=200)),
        Row("POST", "/accounts/password/", answers(no_role=200, lead=200)),  # empty form: errors
    ],
    "password_change_done": [Row("GET", "/accounts/password/done/", answers(no_role=200, lead=200))],
    # The admin site: the Admin role only; its own sign-in page for the others.
    "admin": [
        Row("GET", "/admin/", answers(signed_out=ADMIN_SIGN_IN, no_role=ADMIN_SIGN_IN, lead=ADMIN_SIGN_IN, admin=200)),
        Row("GET", "/admin/login/", answers(signed_out=200, no_role=200, lead=200, admin="/admin/")),
        Row("GET", "/admin/queues/reroute/", ADMIN_ONLY),
        Row("GET", "/admin/queues/reroute/{own}/change/", ADMIN_ONLY),
        Row("POST", "/admin/queues/reroute/{own}/change/", ADMIN_REFUSES, data={"note": "changed"}),
        Row("GET", "/admin/queues/reroute/{own}/delete/", ADMIN_REFUSES),
        Row("GET", "/admin/queues/reroute/add/", ADMIN_REFUSES),
        Row("GET", "/admin/queues/rerouteevent/", ADMIN_ONLY),
        Row("GET", "/admin/queues/rerouteevent/{event}/change/", ADMIN_ONLY),
        Row("GET", "/admin/auth/user/", ADMIN_ONLY),
        Row("GET", "/admin/axes/accessattempt/", ADMIN_ONLY),
    ],
    # The app: routing needs queues.add_reroute; reading a reroute needs to own it or view_all_reroutes.
    "queues:home": [Row("GET", "/", answers(no_role="/reroute/", lead="/reroute/"))],
    "queues:favicon": [Row("GET", "/favicon.ico", answers(signed_out=FAVICON, no_role=FAVICON, lead=FAVICON))],
    "queues:reroute": [
        Row("GET", "/reroute/", answers(no_role=403, lead=200)),
        Row("GET", "/reroute/", answers(no_role=403, lead=200), htmx=True),
        Row("POST", "/reroute/", answers(no_role=403, lead="/reroutes/"), data=NEW_REROUTE),
        Row("POST", "/reroute/", answers(no_role=403, lead=200), htmx=True, data=NEW_REROUTE),
        Row("DELETE", "/reroute/", answers(no_role=405, lead=405)),
    ],
    "queues:devices_refresh": [
        Row("GET", "/reroute/devices/", answers(no_role=405, lead=405)),
        Row("POST", "/reroute/devices/", answers(no_role=403, lead="/reroute/")),
        Row("POST", "/reroute/devices/", answers(no_role=403, lead=200), htmx=True,
            data={"source": SALES_3, "target": SALES_4}),
    ],
    "queues:reroute_preview": [
        Row("GET", f"/reroute/preview/?source={SALES_3}&target={SALES_4}", answers(no_role=403, lead=200), htmx=True),
        Row("GET", "/reroute/preview/?source=nope", answers(no_role=403, lead=200)),  # said in the fragment
        Row("POST", "/reroute/preview/", answers(no_role=405, lead=405)),
    ],
    "queues:reroute_recent": [
        Row("GET", "/reroute/recent/", answers(no_role=403, lead=200), htmx=True),
        Row("POST", "/reroute/recent/", answers(no_role=405, lead=405)),
    ],
    "queues:reroute_detail": [
        Row("GET", "/reroutes/{own}/", answers(no_role=403, lead=200)),
        Row("GET", "/reroutes/{own}/", answers(no_role=403, lead=200), htmx=True),
        Row("GET", "/reroutes/{other}/", answers(no_role=403, lead=403, manager=200)),
        Row("GET", "/reroutes/{other}/", answers(no_role=403, lead=403, manager=200), htmx=True),
        Row("POST", "/reroutes/{own}/", answers(no_role=405, lead=405)),
    ],
    # The history: reading every reroute needs view_all_reroutes; exporting it needs export_reroutes.
    # Every number: whoever may reroute sees the fleet (queues.add_reroute, every role).
    "queues:numbers": [
        Row("GET", "/numbers/", answers(no_role=403, lead=200)),
        Row("GET", "/numbers/?cannot_deliver=1&q=sales", answers(no_role=403, lead=200), htmx=True),
        Row("GET", "/numbers/?page=x", answers(no_role=403, lead=200)),  # explained on the page
        Row("POST", "/numbers/", answers(no_role=405, lead=405)),
    ],
    "queues:number": [
        Row("GET", f"/numbers/{SALES_3}/", answers(no_role=403, lead=200)),
        Row("GET", f"/numbers/{SALES_3}/?before=x", answers(no_role=403, lead=200), htmx=True),
        Row("GET", "/numbers/65a000000000000000000999/", answers(no_role=403, lead=404)),
        Row("POST", f"/numbers/{SALES_3}/", answers(no_role=405, lead=405)),
    ],
    "queues:history": [
        Row("GET", "/history/", answers(no_role=403, lead=403, manager=200)),
        Row("GET", "/history/?status=failed&before={own}", answers(no_role=403, lead=403, manager=200), htmx=True),
        Row("GET", "/history/?q=x&device=nope", answers(no_role=403, lead=403, manager=200)),  # explained on the form
        Row("POST", "/history/", answers(no_role=405, lead=405)),
    ],
    "queues:history_export_csv": [
        Row("GET", "/history/export.csv", answers(no_role=403, lead=403, manager=403, admin=200)),
        Row("GET", "/history/export.csv?q=x", answers(no_role=403, lead=403, manager=403, admin=400)),
        Row("POST", "/history/export.csv", answers(no_role=405, lead=405)),
    ],
    "queues:history_export_jsonl": [
        Row("GET", "/history/export.jsonl?status=queued", answers(no_role=403, lead=403, manager=403, admin=200)),
        Row("GET", "/history/export.jsonl?status=lost", answers(no_role=403, lead=403, manager=403, admin=400)),
        Row("POST", "/history/export.jsonl", answers(no_role=405, lead=405)),
    ],
    # Shift handovers: queues.run_handover (shift managers and admins).
    "queues:handovers": [
        Row("GET", "/handovers/", answers(no_role=403, lead=403, manager=200)),
        Row("POST", "/handovers/", answers(no_role=405, lead=405)),
    ],
    "queues:handover_plan_new": [
        Row("GET", "/handovers/plans/new/", answers(no_role=403, lead=403, manager=200)),
        Row("POST", "/handovers/plans/new/", answers(no_role=403, lead=403, manager=200)),  # empty form: errors
    ],
    "queues:handover_plan": [
        Row("GET", "/handovers/plans/{plan}/", answers(no_role=403, lead=403, manager=200)),
        Row("POST", "/handovers/plans/{plan}/", answers(no_role=403, lead=403, manager=200)),  # empty form: errors
    ],
    "queues:handover_plan_export": [
        Row("GET", "/handovers/plans/{plan}/export.csv", answers(no_role=403, lead=403, manager=200)),
        Row("POST", "/handovers/plans/{plan}/export.csv", answers(no_role=405, lead=405)),
    ],
    "queues:handover_plan_copy": [
        Row("POST", "/handovers/plans/{plan}/copy/", answers(no_role=403, lead=403, manager="/handovers/plans/")),
        Row("GET", "/handovers/plans/{plan}/copy/", answers(no_role=405, lead=405)),
    ],
    "queues:handover_plan_delete": [
        Row("GET", "/handovers/plans/{plan}/delete/", answers(no_role=403, lead=403, manager=200)),
        Row("POST", "/handovers/plans/{plan}/delete/", answers(no_role=403, lead=403, manager="/handovers/")),
    ],
    "queues:handover_plan_run": [
        Row("POST", "/handovers/plans/{plan}/run/", answers(no_role=403, lead=403, manager="/handovers/runs/")),
        Row("GET", "/handovers/plans/{plan}/run/", answers(no_role=405, lead=405)),
    ],
    "queues:handover_run": [
        Row("GET", "/handovers/runs/{run}/", answers(no_role=403, lead=403, manager=200)),
        Row("GET", "/handovers/runs/{run}/", answers(no_role=403, lead=403, manager=200), htmx=True),
    ],
    "queues:handover_run_retry": [
        Row("POST", "/handovers/runs/{run}/retry/", answers(no_role=403, lead=403, manager="/handovers/runs/")),
        Row("GET", "/handovers/runs/{run}/retry/", answers(no_role=405, lead=405)),
    ],
    "queues:handover_run_cancel": [
        Row("POST", "/handovers/runs/{run}/cancel/", answers(no_role=403, lead=403, manager="/handovers/runs/")),
        Row("GET", "/handovers/runs/{run}/cancel/", answers(no_role=405, lead=405)),
    ],
    # Failover rules: leads read them (queues.view_rule); shift managers and admins change them.
    "queues:rules": [
        Row("GET", "/rules/", answers(no_role=403, lead=200)),
        Row("POST", "/rules/", answers(no_role=405, lead=405)),
    ],
    "queues:rule": [
        Row("GET", "/rules/{rule}/", answers(no_role=403, lead=200)),
        Row("POST", "/rules/{rule}/", answers(no_role=405, lead=405)),
    ],
    "queues:rule_new": [
        Row("GET", "/rules/new/", answers(no_role=403, lead=403, manager=200)),
        Row("POST", "/rules/new/", answers(no_role=403, lead=403, manager=200)),  # empty form: errors
    ],
    "queues:rule_edit": [
        Row("GET", "/rules/{rule}/edit/", answers(no_role=403, lead=403, manager=200)),
        Row("POST", "/rules/{rule}/edit/", answers(no_role=403, lead=403, manager=200)),  # empty form: errors
    ],
    "queues:rule_switch": [
        Row("POST", "/rules/{rule}/switch/", answers(no_role=403, lead=403, manager="/rules/"),
            data={"enabled": "false"}),
        Row("GET", "/rules/{rule}/switch/", answers(no_role=405, lead=405)),
    ],
    "queues:rule_delete": [
        Row("GET", "/rules/{rule}/delete/", answers(no_role=403, lead=403, manager=200)),
        Row("POST", "/rules/{rule}/delete/", answers(no_role=403, lead=403, manager="/rules/")),
    ],
    # SparkBot's webhook: no session, the secret in the URL (the endpoint is off without one).
    "queues:sparkbot_hook": [
        Row("POST", "/hooks/sparkbot/wrong-secret-of-enough-length", answers(
            signed_out=404, no_role=404, lead=404)),
        Row("GET", "/hooks/sparkbot/wrong-secret-of-enough-length", answers(signed_out=405, no_role=405, lead=405)),
    ],
}


# Issue 12: API tokens (anyone signed in: their own; admins: everyone's) and notifications (admins).
ADMIN_PAGE = answers(no_role=403, lead=403, manager=403, admin=200)
MATRIX.update({
    "queues:tokens": [
        Row("GET", "/account/tokens/", answers(no_role=200, lead=200)),
        Row("POST", "/account/tokens/", answers(no_role=200, lead=200), data={"name": "matrix"}),
        Row("DELETE", "/account/tokens/", answers(no_role=405, lead=405)),
    ],
    "queues:tokens_all": [
        Row("GET", "/account/tokens/all/", ADMIN_PAGE),
        Row("POST", "/account/tokens/all/", answers(no_role=405, lead=405)),
    ],
    "queues:token_revoke": [  # {token} is the lead's: others are told it does not exist, admins may revoke it
        Row("POST", "/account/tokens/{token}/revoke/", answers(no_role=404, lead="/account/tokens/", manager=404,
                                                               admin="/account/tokens/all/")),
        Row("GET", "/account/tokens/{token}/revoke/", answers(no_role=405, lead=405)),
    ],
    "queues:notifications": [
        Row("GET", "/notifications/", ADMIN_PAGE),
        Row("POST", "/notifications/", answers(no_role=405, lead=405)),
    ],
    "queues:webhook_new": [
        Row("GET", "/notifications/webhooks/new/", ADMIN_PAGE),
        Row("POST", "/notifications/webhooks/new/", ADMIN_PAGE),  # empty form: errors
    ],
    "queues:webhook": [
        Row("GET", "/notifications/webhooks/{endpoint}/", ADMIN_PAGE),
        Row("POST", "/notifications/webhooks/{endpoint}/", ADMIN_PAGE),  # empty form: errors
    ],
    "queues:webhook_secret": [
        Row("POST", "/notifications/webhooks/{endpoint}/secret/", ADMIN_PAGE),
        Row("GET", "/notifications/webhooks/{endpoint}/secret/", answers(no_role=405, lead=405)),
    ],
    "queues:webhook_delete": [
        Row("GET", "/notifications/webhooks/{endpoint}/delete/", ADMIN_PAGE),
        Row("POST", "/notifications/webhooks/{endpoint}/delete/",
            answers(no_role=403, lead=403, manager=403, admin="/notifications/")),
    ],
    "queues:email_new": [
        Row("GET", "/notifications/emails/new/", ADMIN_PAGE),
        Row("POST", "/notifications/emails/new/", ADMIN_PAGE),  # empty form: errors
    ],
    "queues:email": [
        Row("GET", "/notifications/emails/{email}/", ADMIN_PAGE),
        Row("POST", "/notifications/emails/{email}/", ADMIN_PAGE),  # empty form: errors
    ],
    "queues:email_delete": [
        Row("GET", "/notifications/emails/{email}/delete/", ADMIN_PAGE),
        Row("POST", "/notifications/emails/{email}/delete/",
            answers(no_role=403, lead=403, manager=403, admin="/notifications/")),
    ],
    "queues:deliveries": [
        Row("GET", "/notifications/deliveries/", ADMIN_PAGE),
        Row("GET", "/notifications/deliveries/?status=failed&endpoint={endpoint}&before=99", ADMIN_PAGE),
        Row("POST", "/notifications/deliveries/", answers(no_role=405, lead=405)),
    ],
    "queues:delivery": [
        Row("GET", "/notifications/deliveries/{delivery}/", ADMIN_PAGE),
        Row("POST", "/notifications/deliveries/{delivery}/", answers(no_role=405, lead=405)),
    ],
    "queues:delivery_resend": [
        Row("POST", "/notifications/deliveries/{delivery}/send-again/",
            answers(no_role=403, lead=403, manager=403, admin="/notifications/deliveries/")),
        Row("GET", "/notifications/deliveries/{delivery}/send-again/", answers(no_role=405, lead=405)),
    ],
})


def cells():
    for rows in MATRIX.values():
        for row in rows:
            for visitor in VISITORS:
                label = f"{visitor}-{row.method}{'-htmx' if row.htmx else ''}-{row.path}"
                yield pytest.param(visitor, row, row.answers[visitor], id=label)


def site_url_names(patterns=None, namespace="") -> set[str]:
    """Every URL name of the site (namespaced); the admin counts as one: its URLs are its own."""
    names = set()
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                names.add("admin")
            else:
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                names |= site_url_names(pattern.url_patterns, inner)
        else:
            names.add(f"{namespace}{pattern.name}" if pattern.name else f"unnamed {pattern.pattern}")
    return names



@pytest.fixture
def site(sandbox, make_user, lead, django_capture_on_commit_callbacks):
    """Two queued reroutes, the lead's and another lead's: the ids the paths name."""
    found = devices.device_list()
    monitor.record_device_list(found.devices, now=timezone.now())  # the numbers /numbers/<id>/ shows
    other_lead = make_user("other-lead", "Support lead")
    with django_capture_on_commit_callbacks(execute=False):
        own = services.reroute_request(source=found.get(SALES_3), target=found.get(SALES_4), note="own", user=lead)
        other = services.reroute_request(source=found.get(SALES_2), target=found.get(SALES_1), note="other",
                                         user=other_lead)
    plan = handovers.plan_save(plan=HandoverPlan(name="Night to Day"), pairs=[(SALES_1, SALES_2)], user=None)
    with django_capture_on_commit_callbacks(execute=False):
        run = handovers.handover_start(plan=plan, user=None)
    rule = Rule.objects.create(name="Sales failover", owner_username="manager", sources=[SALES_1], targets=[SALES_2])
    return {"own": own.pk, "other": other.pk, "event": own.events.get().pk, "plan": plan.pk, "run": run.pk,
            "rule": rule.pk, **api_and_notification_ids(lead)}


def visitor_user(visitor: str, make_user, lead):
    if visitor == "anonymous":
        return None
    if visitor == "lead":
        return lead
    if visitor == "inactive":
        user = make_user("inactive", "Admin")
        user.is_active = False
        user.save()
        return user
    return make_user(visitor, {"no-role": None, "manager": "Shift manager", "admin": "Admin"}[visitor])


def send(client, row: Row, url: str):
    extra = HTMX if row.htmx else {}
    if row.method == "GET":
        return client.get(url, **extra)
    if row.method == "POST":
        return client.post(url, row.data, **extra)
    return client.generic(row.method, url, **extra)


def test_it_lists_every_url_of_the_site():
    names, listed = site_url_names(), set(MATRIX) | set(API_MATRIX)
    assert not names - listed, f"URLs missing from the access matrix: {sorted(names - listed)}"
    assert not listed - names, f"rows for URLs the site no longer has: {sorted(listed - names)}"


@pytest.mark.parametrize("visitor, row, expected", cells())
def test_it_answers_each_visitor_exactly(visitor, row, expected, site, client, make_user, lead,
                                         django_capture_on_commit_callbacks):
    user = visitor_user(visitor, make_user, lead)
    if user is not None:
        client.force_login(user)
    reroutes_before = Reroute.objects.count()
    with django_capture_on_commit_callbacks(execute=False):
        response = send(client, row, row.path.format(**site))
    if isinstance(expected, int):
        assert response.status_code == expected, response.get("Location")
        if expected == 403:
            assert b"<h1>Not allowed</h1>" in response.content  # the app's 403 page, in its layout
    else:
        assert response.status_code == 302 and response["Location"].startswith(expected), response.get("Location")
    if row.path == "/reroute/" and row.method == "POST":
        allowed = expected not in (403, SIGN_IN)
        assert Reroute.objects.count() == reroutes_before + allowed


# Issue 12: the JSON API, every operation × every kind of caller -----------------------------------
# Callers present a personal token of their own (anonymous: none; inactive: one of an account that
# may no longer sign in); rows marked session=True sign in instead. Every refusal is problem details.

PROBLEM = "application/problem+json"
MISSING_DEVICE = "65a000000000000000000999"  # well formed; no number has it
NEW_API_REROUTE = {"source": "Sales-1", "target": SALES_4, "note": "matrix"}


@dataclass(frozen=True)
class ApiRow:
    method: str
    path: str
    answers: dict
    operation: str = ""  # the OpenAPI operationId this row covers ("" for an address that is no operation)
    body: dict | None = None
    session: bool = False


def api(*, no_role, lead, manager=None, admin=None, anonymous=401):
    return answers(no_role=no_role, lead=lead, manager=manager, admin=admin, signed_out=anonymous)


EVERYONE_405 = api(anonymous=405, no_role=405, lead=405)
API_MATRIX = {
    "api:openapi-json": [
        ApiRow("GET", "/api/v1/openapi.json", api(no_role=200, lead=200)),
        ApiRow("POST", "/api/v1/openapi.json", EVERYONE_405),
    ],
    "api:openapi-view": [  # a page for browsers: signed in, like any other page
        ApiRow("GET", "/api/v1/docs", api(anonymous=SIGN_IN, no_role=200, lead=200), session=True),
        ApiRow("GET", "/api/v1/docs", api(anonymous=SIGN_IN, no_role=SIGN_IN, lead=SIGN_IN)),  # a token is no session
    ],
    "api:api-root": [ApiRow("GET", "/api/v1/", api(anonymous=404, no_role=404, lead=404))],
    "api:numbers": [
        ApiRow("GET", "/api/v1/numbers", api(no_role=403, lead=200), operation="number_list"),
        ApiRow("GET", "/api/v1/numbers", api(no_role=403, lead=200), session=True),
        ApiRow("DELETE", "/api/v1/numbers", EVERYONE_405),
    ],
    "api:number": [
        ApiRow("GET", "/api/v1/numbers/{number}", api(no_role=403, lead=200), operation="number_read"),
        ApiRow("GET", f"/api/v1/numbers/{MISSING_DEVICE}", api(no_role=403, lead=404)),
    ],
    "api:reroutes": [
        ApiRow("POST", "/api/v1/reroutes", api(no_role=403, lead=202), operation="reroute_create", body=NEW_API_REROUTE),
        ApiRow("POST", "/api/v1/reroutes", api(no_role=403, lead=202), body=NEW_API_REROUTE, session=True),
        ApiRow("GET", "/api/v1/reroutes", api(no_role=403, lead=403, manager=200), operation="reroute_list"),
        ApiRow("GET", "/api/v1/reroutes?status=queued&before={own}", api(no_role=403, lead=403, manager=200)),
        ApiRow("GET", "/api/v1/reroutes?q=x", api(no_role=403, lead=403, manager=422)),
        ApiRow("PUT", "/api/v1/reroutes", EVERYONE_405),
    ],
    "api:reroute": [
        ApiRow("GET", "/api/v1/reroutes/{own}", api(no_role=403, lead=200), operation="reroute_read"),
        ApiRow("GET", "/api/v1/reroutes/{other}", api(no_role=403, lead=403, manager=200)),
        ApiRow("GET", "/api/v1/reroutes/{other}", api(no_role=403, lead=403, manager=200), session=True),
        ApiRow("DELETE", "/api/v1/reroutes/{own}", EVERYONE_405),
    ],
    "api:handover_plans": [
        ApiRow("GET", "/api/v1/handover-plans", api(no_role=403, lead=403, manager=200),
               operation="handover_plan_list"),
        ApiRow("POST", "/api/v1/handover-plans", EVERYONE_405),
    ],
    "api:handover_plan_runs": [
        ApiRow("POST", "/api/v1/handover-plans/{idle_plan}/runs", api(no_role=403, lead=403, manager=202),
               operation="handover_run_start"),
        ApiRow("POST", "/api/v1/handover-plans/{plan}/runs", api(no_role=403, lead=403, manager=409)),
        ApiRow("GET", "/api/v1/handover-plans/{plan}/runs", EVERYONE_405),
    ],
    "api:handover_run": [
        ApiRow("GET", "/api/v1/handover-runs/{run}", api(no_role=403, lead=403, manager=200),
               operation="handover_run_read"),
        ApiRow("POST", "/api/v1/handover-runs/{run}", EVERYONE_405),
    ],
    "api:rules": [
        ApiRow("GET", "/api/v1/rules", api(no_role=403, lead=200), operation="rule_list"),
        ApiRow("POST", "/api/v1/rules", EVERYONE_405),
    ],
    "api:rule_enable": [
        ApiRow("POST", "/api/v1/rules/{rule}/enable", api(no_role=403, lead=403, manager=200),
               operation="rule_enable"),
        ApiRow("GET", "/api/v1/rules/{rule}/enable", EVERYONE_405),
    ],
    "api:rule_disable": [
        ApiRow("POST", "/api/v1/rules/{rule}/disable", api(no_role=403, lead=403, manager=200),
               operation="rule_disable"),
        ApiRow("GET", "/api/v1/rules/{rule}/disable", EVERYONE_405),
    ],
}


def api_and_notification_ids(lead) -> dict:
    """A token of the lead's, a webhook endpoint, an email subscription, a delivery, a number, an idle plan."""
    from django.utils import timezone

    from queues import tokens
    from queues.models import Delivery, EmailSubscription, Number, WebhookEndpoint

    now = timezone.now()
    token = tokens.token_create(owner=lead, name="lead's script").token
    endpoint = WebhookEndpoint.objects.create(name="n8n", url="https://n8n.example.com/hook", secret="whsec_AAAA",
                                              events=["reroute.failed"])
    lead.email = "lead@example.com"
    lead.save()
    email = EmailSubscription.objects.create(user=lead, events=["reroute.failed"])
    delivery = Delivery.objects.create(message_id="msg_matrix", event_type="reroute.failed", about="Reroute #1",
                                       channel="webhook", endpoint=endpoint, destination=endpoint.url, body="{}",
                                       status="failed", attempts=3)
    number, _ = Number.objects.update_or_create(device_id=SALES_3, defaults=dict(
        alias="Sales-3", phone="+447700900003", account_status="operative", session_status="online",
        can_deliver=True, state_since=now, listed_at=now, queue_total=37))
    idle_plan = handovers.plan_save(plan=HandoverPlan(name="Idle"), pairs=[(SALES_2, SALES_1)], user=None)
    return {"token": token.pk, "endpoint": endpoint.pk, "email": email.pk, "delivery": delivery.pk,
            "number": number.device_id, "idle_plan": idle_plan.pk}


def api_cells():
    for rows in API_MATRIX.values():
        for row in rows:
            for visitor in VISITORS:
                label = f"{visitor}-{row.method}{'-session' if row.session else ''}-{row.path}"
                yield pytest.param(visitor, row, row.answers[visitor], id=label)


def test_it_lists_every_api_operation():
    from queues.api.app import api as dashboard_api

    schema = dashboard_api.get_openapi_schema(path_prefix="/api/v1/")
    operations = {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}
    covered = {row.operation for rows in API_MATRIX.values() for row in rows if row.operation}
    assert not operations - covered, f"API operations missing from the access matrix: {sorted(operations - covered)}"
    assert not covered - operations, f"rows for operations the API no longer has: {sorted(covered - operations)}"


@pytest.mark.parametrize("visitor, row, expected", api_cells())
def test_it_answers_each_api_caller_exactly(visitor, row, expected, site, client, make_user, lead,
                                            django_capture_on_commit_callbacks):
    import json

    from queues import tokens

    user = visitor_user(visitor, make_user, lead)
    headers = {}
    if user is not None and row.session:
        client.force_login(user)
    elif user is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {tokens.token_create(owner=user, name='matrix').secret}"
    reroutes_before = Reroute.objects.count()
    body = {"data": json.dumps(row.body), "content_type": "application/json"} if row.body else {}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.generic(row.method, row.path.format(**site), **body, **headers)
    if isinstance(expected, int):
        assert response.status_code == expected, response.content[:300]
        if expected >= 400:
            assert response["Content-Type"] == PROBLEM and response.json()["status"] == expected
        if expected == 401:
            assert response["WWW-Authenticate"].startswith("Bearer")
    else:
        assert response.status_code == 302 and response["Location"].startswith(expected), response.get("Location")
    if row.body is not None:
        assert Reroute.objects.count() == reroutes_before + (expected == 202)
