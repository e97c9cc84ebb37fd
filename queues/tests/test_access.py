"""The access matrix: every URL of the site, for every kind of visitor, and its exact answer.

A cell's answer is a status code, or a path: a 302 whose Location starts with it
(SIGN_IN and ADMIN_SIGN_IN are the two sign-in pages). Add a URL to the site and
test_it_lists_every_url_of_the_site fails until the URL has its rows here.
"""

from dataclasses import dataclass, field

import pytest
from django.urls import URLResolver, get_resolver

from queues import devices, handovers, services
from queues.models import HandoverPlan, Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = pytest.mark.django_db

VISITORS = ["anonymous", "inactive", "no-role", "lead", "manager", "admin"]
HTMX = {"HTTP_HX_REQUEST": "true"}
SIGN_IN = "/accounts/login/"
ADMIN_SIGN_IN = "/admin/login/"
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
    "queues:queue_stats": [
        Row("GET", f"/reroute/queue/?source={SALES_3}", answers(no_role=403, lead=200)),
        Row("GET", f"/reroute/queue/?source={SALES_3}", answers(no_role=403, lead=200), htmx=True),
        Row("POST", f"/reroute/queue/?source={SALES_3}", answers(no_role=405, lead=405)),
    ],
    "queues:reroute_detail": [
        Row("GET", "/reroutes/{own}/", answers(no_role=403, lead=200)),
        Row("GET", "/reroutes/{own}/", answers(no_role=403, lead=200), htmx=True),
        Row("GET", "/reroutes/{other}/", answers(no_role=403, lead=403, manager=200)),
        Row("GET", "/reroutes/{other}/", answers(no_role=403, lead=403, manager=200), htmx=True),
        Row("POST", "/reroutes/{own}/", answers(no_role=405, lead=405)),
    ],
    # The history: reading every reroute needs view_all_reroutes; exporting it needs export_reroutes.
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
}


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
    other_lead = make_user("other-lead", "Support lead")
    with django_capture_on_commit_callbacks(execute=False):
        own = services.reroute_request(source=found.get(SALES_3), target=found.get(SALES_4), note="own", user=lead)
        other = services.reroute_request(source=found.get(SALES_2), target=found.get(SALES_1), note="other",
                                         user=other_lead)
    plan = handovers.plan_save(plan=HandoverPlan(name="Night to Day"), pairs=[(SALES_1, SALES_2)], user=None)
    with django_capture_on_commit_callbacks(execute=False):
        run = handovers.handover_start(plan=plan, user=None)
    return {"own": own.pk, "other": other.pk, "event": own.events.get().pk, "plan": plan.pk, "run": run.pk}


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
    names, listed = site_url_names(), set(MATRIX)
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
