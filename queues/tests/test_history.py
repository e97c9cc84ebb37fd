"""The history page (/history/): each filter, the URL round trip, keyset pages, bad input; a reroute's
whole story on its own page; the read-only audit admin's search and filters."""

import re
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from queues import history, services
from queues.models import HandoverRun, Reroute, RerouteEvent
from queues.sparkbot import Device
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4
from tests.support import tamper

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
HTMX = {"HTTP_HX_REQUEST": "true"}
UTC = dt_timezone.utc
DEVICES = {
    SALES_1: Device(SALES_1, "Sales-1", "+447700900001", "operative", "online"),
    SALES_2: Device(SALES_2, "Sales-2", "+447700900002", "operative", "online"),
    SALES_3: Device(SALES_3, "Sales-3", "+447700900003", "operative", "online"),
    SALES_4: Device(SALES_4, "Sales-4", "+447700900004", "operative", "online"),
}


def make_reroute(*, when: datetime | None = None, user: str = "alice", source: str = SALES_3, target: str = SALES_4,
                 note: str = "", status: str = "succeeded", origin: str = "web", moved: int | None = 37,
                 seconds: float = 2.5, **fields) -> Reroute:
    """A reroute as the worker leaves it, written through the ORM (search_text as services writes it).

    `when` sets created_at (and ended_at = when + seconds) with plain SQL past the append-only
    triggers: the model stamps created_at itself and refuses changes to an ended record.
    """
    src, dst = DEVICES[source], DEVICES[target]
    ended = status in Reroute.ENDED
    reroute = Reroute.objects.create(
        requested_by_username=user, origin=origin, note=note,
        source_id=src.id, source_alias=src.alias, source_phone=src.phone,
        target_id=dst.id, target_alias=dst.alias, target_phone=dst.phone,
        search_text=services.search_text(note, src, dst), status=status, attempts=1 if ended else 0,
        messages_moved=moved if ended else None, **fields,
    )
    if when is not None:
        adapt = connection.ops.adapt_datetimefield_value  # as Django stores it on this database
        tamper(f"UPDATE {Reroute._meta.db_table} SET created_at = %s, ended_at = %s WHERE id = %s",
               [adapt(when), adapt(when + timedelta(seconds=seconds)) if ended else None, reroute.pk])
    return Reroute.objects.get(pk=reroute.pk)


@pytest.fixture
def rows(db):
    """Five reroutes across three days, one of them queued, one in a handover run."""
    run = HandoverRun.objects.create(plan_name="Evening shift", started_by_username="manager")
    made = {
        "night": make_reroute(when=datetime(2026, 3, 1, 8, 0, tzinfo=UTC), user="alice", source=SALES_3,
                              target=SALES_4, note="Night shift for Sales-3", moved=37, seconds=2.5),
        "late": make_reroute(when=datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), user="bob", source=SALES_1,
                             target=SALES_3, note="lunch", status="failed", origin="api", moved=None,
                             error_code="refused", error_message="SparkBot refused the route."),
        "midnight": make_reroute(when=datetime(2026, 3, 2, 0, 0, tzinfo=UTC), user="alice", source=SALES_2,
                                 target=SALES_1, origin="handover", handover_run=run, moved=0),
        "cli": make_reroute(when=datetime(2026, 3, 3, 10, 0, tzinfo=UTC), user="carol", source=SALES_4,
                            target=SALES_2, note="Moved by the weekend script", origin="cli", moved=5),
        "queued": make_reroute(user="bob", source=SALES_1, target=SALES_2, note="now", status="queued"),
    }
    return {"run": run, **made}


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def listed(response) -> list[int]:
    """The reroute ids of the history's rows, in the page's order."""
    return [int(pk) for pk in re.findall(r'<tr id="history-row-(\d+)"', response.content.decode())]


def ids(rows, *names) -> list[int]:
    return [rows[name].pk for name in names]


# Who may read it ------------------------------------------------------------------------------


def test_it_shows_the_history_to_managers_and_admins_only(client, make_user, rows):
    for role, status in [("Support lead", 403), (None, 403), ("Shift manager", 200), ("Admin", 200)]:
        client.force_login(make_user(f"user-{role}", role))
        assert client.get("/history/").status_code == status, role
        assert client.get("/history/", **HTMX).status_code == status, role


def test_it_links_the_history_from_the_menu_for_those_who_may_read_it(client, lead, manager):
    client.force_login(lead)
    assert 'href="/history/"' not in client.get("/reroute/").content.decode()
    client.force_login(manager)
    assert '<a href="/history/">History</a>' in client.get("/reroute/").content.decode()


# The list -------------------------------------------------------------------------------------


def test_it_lists_reroutes_newest_first_with_what_an_admin_needs(manager_client, rows):
    response = manager_client.get("/history/")
    assert listed(response) == ids(rows, "queued", "cli", "midnight", "late", "night")
    html = response.content.decode()
    row = re.search(rf'<tr id="history-row-{rows["night"].pk}".*?</tr>', html, re.S).group(0)
    for text in ["2026-03-01 08:00:00", ">alice<", ">Sales-3<", "+447700900003", ">Sales-4<", "+447700900004",
                 "Night shift for Sales-3", "Succeeded", ">37<", "2.5 s", f'href="/reroutes/{rows["night"].pk}/"',
                 f'href="/history/?device={SALES_3}"', 'href="/history/?user=alice"']:
        assert text in row, text
    failed = re.search(rf'<tr id="history-row-{rows["late"].pk}".*?</tr>', html, re.S).group(0)
    assert "Failed" in failed and "refused" in failed and "API" in failed
    handover = re.search(rf'<tr id="history-row-{rows["midnight"].pk}".*?</tr>', html, re.S).group(0)
    assert f'href="/history/?handover={rows["run"].pk}"' in handover
    queued = re.search(rf'<tr id="history-row-{rows["queued"].pk}".*?</tr>', html, re.S).group(0)
    assert "Queued" in queued and "—" in queued  # nothing moved yet, no duration yet


def test_it_shows_stored_text_as_text(manager_client, db):
    make_reroute(note="<script>alert('x')</script><img src=x onerror=alert(1)>")
    html = manager_client.get("/history/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


@pytest.mark.parametrize("query, expected", [
    ("date_from=2026-03-01&date_to=2026-03-01", ["late", "night"]),  # 23:59:59 in, 00:00 the next day out
    ("date_from=2026-03-02&date_to=2026-03-03", ["cli", "midnight"]),
    ("date_to=2026-03-01", ["late", "night"]),
    ("date_from=2026-03-02", ["queued", "cli", "midnight"]),
    (f"device={SALES_3}", ["late", "night"]),  # as target, as source
    (f"device={SALES_3.upper()}", ["late", "night"]),
    (f"device={SALES_1}", ["queued", "midnight", "late"]),
    ("user=alice", ["midnight", "night"]),
    ("user=ali", []),  # a username is matched exactly
    ("status=failed", ["late"]),
    ("status=queued", ["queued"]),
    ("status=succeeded", ["cli", "midnight", "night"]),
    ("origin=api", ["late"]),
    ("origin=cli", ["cli"]),
    ("origin=handover", ["midnight"]),
    ("q=night", ["night"]),  # the note
    ("q=NIGHT+SHIFT", ["night"]),  # any case, inner spaces kept
    ("q=sales-2", ["queued", "cli", "midnight"]),  # an alias, as source or target
    ("q=%2B447700900004", ["cli", "night"]),  # a phone
    ("q=weekend", ["cli"]),
    ("q=no-such-text", []),
    ("user=bob&status=failed", ["late"]),
    (f"device={SALES_1}&origin=api&q=lunch", ["late"]),
    ("date_from=2026-03-01&date_to=2026-03-02&user=alice", ["midnight", "night"]),
])
def test_it_filters_the_history(manager_client, rows, query, expected):
    response = manager_client.get(f"/history/?{query}")
    assert response.status_code == 200
    assert listed(response) == ids(rows, *expected)
    assert listed(manager_client.get(f"/history/?{query}", **HTMX)) == ids(rows, *expected)


def test_it_filters_by_handover_run_and_names_it(manager_client, rows):
    response = manager_client.get(f"/history/?handover={rows['run'].pk}")
    assert listed(response) == ids(rows, "midnight")
    assert f"Handover run #{rows['run'].pk}: Evening shift" in response.content.decode()
    assert listed(manager_client.get(f"/history/?handover={rows['run'].pk + 1}")) == []


def test_it_reads_dates_in_the_dashboards_time_zone(manager_client, rows, settings):
    settings.TIME_ZONE = "Asia/Tokyo"  # UTC+9: 2026-03-01 23:59:59 UTC is 2 March there
    response = manager_client.get("/history/?date_from=2026-03-02&date_to=2026-03-02")
    assert listed(response) == ids(rows, "midnight", "late")
    assert "2026-03-02 08:59:59" in response.content.decode()


def test_it_says_when_nothing_matches(manager_client, rows):
    html = manager_client.get("/history/?q=no-such-text").content.decode()
    assert "No reroute matches these filters." in html


# The URL round trip ---------------------------------------------------------------------------


def test_it_pushes_the_canonical_url_of_the_filters_to_the_address_bar(manager_client, rows, admin_user):
    response = manager_client.get(
        f"/history/?date_from=2026-03-01&date_to=&device=+{SALES_1.upper()}+&user=bob&status=failed&origin="
        "&handover=&q=+LUNCH+", **HTMX)
    canonical = f"/history/?date_from=2026-03-01&device={SALES_1}&user=bob&status=failed&q=lunch"
    assert response["HX-Push-Url"] == canonical
    assert listed(response) == ids(rows, "late")
    assert "<html" not in response.content.decode()  # the results fragment only

    page = manager_client.get(canonical)  # the shared or bookmarked address shows the same
    html = page.content.decode()
    assert listed(page) == ids(rows, "late")
    assert 'name="date_from" value="2026-03-01"' in html and 'name="user" value="bob"' in html
    assert f'name="device" value="{SALES_1}"' in html and 'name="q" value="lunch"' in html
    assert '<option value="failed" selected>Failed</option>' in html
    assert "export.csv" not in html  # a manager may not export
    manager_client.force_login(admin_user)
    html = manager_client.get(canonical).content.decode()
    assert f'href="/history/export.csv?date_from=2026-03-01&amp;device={SALES_1}&amp;user=bob&amp;status=failed' \
           '&amp;q=lunch"' in html and 'href="/history/export.jsonl?date_from=2026-03-01&amp;' in html


def test_it_pushes_the_bare_address_when_no_filter_is_set(manager_client, rows):
    response = manager_client.get("/history/?date_from=&status=&q=", **HTMX)
    assert response["HX-Push-Url"] == "/history/"


def test_it_answers_an_htmx_history_restore_with_the_whole_page(manager_client, rows):
    response = manager_client.get("/history/?status=failed", HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    html = response.content.decode()
    assert "<html" in html and 'id="history-filters"' in html and listed(response) == ids(rows, "late")


def test_it_offers_the_form_with_htmx_and_a_plain_get(manager_client, rows):
    html = manager_client.get("/history/").content.decode()
    form = re.search(r'<form id="history-filters".*?>', html, re.S).group(0)
    assert 'method="get" action="/history/"' in form and 'hx-get="/history/"' in form
    assert 'hx-target="#history-results"' in form and "keyup changed delay:300ms" in form
    assert 'hx-history="false"' in html  # the audit log is not copied into the browser's storage
    assert "onclick" not in html and "<script>" not in html.split("</head>")[1]  # CSP: htmx attributes only


# Keyset pages ---------------------------------------------------------------------------------


def walk(client, url: str, link: str) -> tuple[list[int], str | None]:
    """The page's ids and the href of its `link` (Older or Newer), which must also be its hx-get."""
    response = client.get(url)
    html = response.content.decode()
    found = re.search(rf'<a href="([^"]+)" hx-get="([^"]+)"[^>]*>[^<]*{link}', html)
    if found:
        assert found.group(1) == found.group(2)  # every link keeps a real href
    return listed(response), found.group(1).replace("&amp;", "&") if found else None


def test_it_pages_through_the_history_with_a_cursor_and_back(manager_client, db):
    made = [make_reroute(user="pager", status="failed" if n % 3 == 0 else "succeeded", moved=n).pk
            for n in range(120)]
    newest_first = made[::-1]
    seen, url, pages = [], "/history/", []
    while url:
        page, url = walk(manager_client, url, "Older")
        pages.append(page)
        seen += page
    assert [len(page) for page in pages] == [50, 50, 20]
    assert seen == newest_first  # every reroute once, in order
    last_url = f"/history/?before={pages[1][-1]}"
    back, newer_url = walk(manager_client, last_url, "Newer")
    assert back == pages[2] and newer_url == f"/history/?after={pages[2][0]}"
    assert walk(manager_client, newer_url, "Newer")[0] == pages[1]
    assert walk(manager_client, f"/history/?after={pages[1][0]}", "Newer")[0] == pages[0]  # the top, whole


def test_it_keeps_the_filters_in_every_page_link(manager_client, db):
    for n in range(130):
        make_reroute(user="other" if n % 5 == 0 else "pager", status="failed" if n % 2 else "succeeded")
    expected = list(Reroute.objects.filter(requested_by_username="pager", status="failed").order_by("-id")
                    .values_list("pk", flat=True))
    first, older = walk(manager_client, "/history/?status=failed&user=pager", "Older")
    assert older == f"/history/?user=pager&status=failed&before={first[-1]}"
    second, end = walk(manager_client, older, "Older")
    assert first + second == expected and len(expected) == 52 and end is None
    _, newer = walk(manager_client, older, "Newer")
    assert newer == f"/history/?user=pager&status=failed&after={second[0]}"


def test_it_pages_a_date_range_by_time_even_when_ids_disagree(manager_client, db):
    """Clocks of several machines: a higher id may have been stamped earlier. A date range walks
    created_at (then id), and its pages neither repeat nor skip a reroute."""
    start = datetime(2026, 5, 1, tzinfo=UTC)
    made = [make_reroute(when=start + timedelta(minutes=(n * 37) % 101)) for n in range(101)]
    by_time = [r.pk for r in sorted(made, key=lambda r: (r.created_at, r.pk), reverse=True)]
    assert by_time != sorted(by_time, reverse=True)
    seen, url = [], "/history/?date_from=2026-05-01&date_to=2026-05-01"
    while url:
        page, url = walk(manager_client, url, "Older")
        seen += page
    assert seen == by_time
    back, _ = walk(manager_client, f"/history/?date_from=2026-05-01&date_to=2026-05-01&after={by_time[60]}", "Newer")
    assert back == by_time[10:60]


def test_it_reads_a_deep_page_without_offset_or_count(manager_client, db):
    for _ in range(60):
        make_reroute()
    pivot = Reroute.objects.order_by("id").values_list("pk", flat=True)[5]
    for query in [f"before={pivot}", f"after={pivot}", f"status=succeeded&before={pivot}",
                  f"device={SALES_3}&before={pivot}", f"q=sales&before={pivot}",
                  f"date_from=2020-01-01&before={pivot}"]:
        with CaptureQueriesContext(connection) as queries:
            assert manager_client.get(f"/history/?{query}").status_code == 200
        reroute_sql = [q["sql"].upper() for q in queries if "QUEUES_REROUTE" in q["sql"].upper()]
        assert reroute_sql and len(reroute_sql) <= 4, query
        for sql in reroute_sql:
            assert "OFFSET" not in sql and "COUNT(" not in sql, sql
            assert "LIMIT" in sql, sql


def test_it_shows_an_empty_page_past_the_oldest_with_a_way_back(manager_client, rows):
    html = manager_client.get("/history/?before=1").content.decode()
    assert "No reroutes on this page." in html and '<a href="/history/" hx-get="/history/"' in html


# Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("query, message", [
    ("device=sales-3", "A device id is 24 characters, 0-9 and a-f"),
    ("device=65a00000000000000000000g", "A device id is 24 characters, 0-9 and a-f"),
    ("status=lost", "Select a valid choice. lost is not one of the available choices."),
    ("origin=email", "Select a valid choice. email is not one of the available choices."),
    ("date_from=2026-02-30", "Enter a valid date."),
    ("date_from=1899-01-01", "Enter a date between 2000-01-01 and 2999-12-31."),
    ("date_from=2026-03-02&date_to=2026-03-01", "The last day is before the first day."),
    ("handover=abc", "Enter a whole number."),
    ("handover=0", "Ensure this value is greater than or equal to 1."),
    ("q=ab", "Type at least 3 characters to search notes, aliases and phones."),
    ("q=" + "x" * 101, "Ensure this value has at most 100 characters (it has 101)."),
    ("user=" + "u" * 151, "Ensure this value has at most 150 characters (it has 151)."),
    ("before=abc", "The page position in this link is not valid"),
    ("before=-5", "The page position in this link is not valid"),
    ("before=99999999999999999999999", "The page position in this link is not valid"),
    ("before=3&after=5", "The page position in this link is not valid"),
])
def test_it_explains_bad_filters_and_shows_nothing_wrong(manager_client, rows, query, message):
    response = manager_client.get(f"/history/?{query}")
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html.replace("&#x27;", "'")
    assert "Nothing is shown until the filters are fixed." in html
    assert listed(response) == [] and "export.csv" not in html
    fragment = manager_client.get(f"/history/?{query}", **HTMX)
    assert listed(fragment) == [] and message in fragment.content.decode().replace("&#x27;", "'")


def test_it_puts_each_message_next_to_its_field_through_htmx(manager_client, rows):
    fragment = manager_client.get("/history/?q=ab&status=failed", **HTMX).content.decode()
    q_errors = re.search(r'<div id="id_q-errors" class="field-errors" hx-swap-oob="true">(.*?)</div>', fragment, re.S)
    assert "Type at least 3 characters" in q_errors.group(1)
    assert re.search(r'<div id="id_status-errors" class="field-errors" hx-swap-oob="true"></div>', fragment)
    assert manager_client.get("/history/?q=ab", **HTMX)["HX-Push-Url"] == "/history/?q=ab"  # shareable, as typed
    page = manager_client.get("/history/?q=ab").content.decode()
    assert re.search(r'<div id="id_q-errors" class="field-errors">.*Type at least 3', page, re.S)
    assert 'hx-swap-oob' not in page


# A reroute's whole story ----------------------------------------------------------------------


@pytest.fixture
def story(sandbox, lead, django_capture_on_commit_callbacks):
    """A reroute run against the sandbox: attempt 1 meets a 503, attempt 2 moves 37 messages."""
    from queues import devices

    found = devices.device_list()
    with django_capture_on_commit_callbacks(execute=False):
        reroute = services.reroute_request(source=found.get(SALES_3), target=found.get(SALES_4),
                                           note="Sales-3 goes offline", user=lead)
    sandbox.fault(route="route_queue", status=503, times=1)
    wait = services.reroute_execute(reroute_id=reroute.pk, attempt=1)
    assert wait is not None
    services.reroute_execute(reroute_id=reroute.pk, attempt=2)
    reroute.refresh_from_db()
    assert (reroute.status, reroute.attempts, reroute.messages_moved) == ("succeeded", 2, 37)
    return reroute


def test_it_tells_the_whole_story_of_a_reroute(manager_client, story):
    other = make_reroute(user="bob", source=SALES_4, target=SALES_1)
    unrelated = make_reroute(user="bob", source=SALES_1, target=SALES_2)
    response = manager_client.get(f"/reroutes/{story.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    # the request
    assert "lead, " in html and "(Web)" in html and "Sales-3 goes offline" in html
    assert f"Sales-3 (+447700900003) <span class=\"muted small\">{SALES_3}</span>" in html
    # each attempt and wait, with SparkBot's answers
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', html, re.S).group(1)
    for text in ["lead asked to move the queue of Sales-3", "Attempt 1 of 4 started.",
                 "Tried to route the queue: unavailable (503).", "HTTP 503",
                 "SparkBot did not answer (503). Retrying in", "waits ", "Attempt 2 of 4 started.", "SparkBot answered: route the queue.", "took ",
                 "Moved 37 messages from Sales-3 to Sales-4."]:
        assert text in timeline, text
    assert "with " in html and " s of waiting between them" in html
    # the queue before and after, the reply, the final message
    table = re.search(r'<table class="table queue-change">(.*?)</table>', html, re.S).group(1)
    assert re.search(r"Queued messages</th><td class=\"num\">37</td><td class=\"num\">0</td>", table)
    assert re.search(r"Pending</th><td class=\"num\">35</td><td class=\"num\">0</td>", table)
    assert "<summary>SparkBot's reply to the route call (secrets removed)</summary>" in html
    assert "&quot;moved&quot;: 37" in html
    assert '<p class="outcome">Moved 37 messages from Sales-3 to Sales-4.</p>' in html
    # the other reroutes of the same numbers
    related = re.search(r'<section class="card related">(.*?)</section>', html, re.S).group(1)
    assert f'href="/reroutes/{other.pk}/"' in related and f'href="/reroutes/{unrelated.pk}/"' not in related
    assert f'href="/history/?device={SALES_3}"' in html and f'href="/history/?device={SALES_4}"' in html


def test_it_answers_the_live_fragment_with_the_story(manager_client, story):
    fragment = manager_client.get(f"/reroutes/{story.pk}/", **HTMX)
    html = fragment.content.decode()
    assert fragment.status_code == 286 and 'class="table queue-change"' in html and "HTTP 503" in html
    assert "<html" not in html and "related" not in html


def test_it_shows_a_lead_the_story_of_their_own_reroute_without_others(client, lead, story):
    make_reroute(user="bob", source=SALES_4, target=SALES_1)
    client.force_login(lead)
    html = client.get(f"/reroutes/{story.pk}/").content.decode()
    assert "Moved 37 messages" in html and "HTTP 503" in html
    assert "/history/" not in html and 'class="card related"' not in html


def test_it_removes_secrets_from_the_replies_it_shows(manager_client, settings, db):
    key = settings.SPARKBOT_API_KEY
    reroute = make_reroute(api_reply={"success": True, "token": "tok-123456", "echo": f"Bearer {key}", "moved": 2},
                           stats_before={"total": 2}, stats_after={"total": 0})
    RerouteEvent.objects.create(reroute=reroute, kind="call", message="Tried to route the queue: refused (409).",
                                detail={"status": 409, "error": "refused", "detail": f"key {key} refused"})
    html = manager_client.get(f"/reroutes/{reroute.pk}/").content.decode()
    assert key not in html and "tok-123456" not in html
    assert "&quot;token&quot;: &quot;[removed]&quot;" in html and "Bearer [removed]" in html
    assert "SparkBot said: key [removed] refused" in html and "HTTP 409; error refused" in html


def test_it_links_a_handover_reroute_to_its_run(manager_client, rows):
    html = manager_client.get(f"/reroutes/{rows['midnight'].pk}/").content.decode()
    assert "Evening shift, run #" in html
    assert f'<a class="handover-link" href="/history/?handover={rows["run"].pk}">' in html


# Selectors ------------------------------------------------------------------------------------


def test_it_merges_the_two_sides_of_a_device_in_order(rows):
    page = history.history_page(filters=history.HistoryFilters(device=SALES_1), size=2)
    assert [r.pk for r in page.rows] == ids(rows, "queued", "midnight") and page.older == rows["midnight"].pk
    rest = history.history_page(filters=history.HistoryFilters(device=SALES_1), before=page.older, size=2)
    assert [r.pk for r in rest.rows] == ids(rows, "late") and rest.older is None
    assert rest.newer == rows["late"].pk


# The admin: read-only, searchable, filterable ---------------------------------------------------


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def admin_listed(response) -> list[int]:
    return [r.pk for r in response.context["cl"].result_list]


@pytest.mark.parametrize("query, expected", [
    ("q=weekend", ["cli"]),
    ("q=SALES-2", ["queued", "cli", "midnight"]),
    ("q=%2B447700900004", ["cli", "night"]),
    (f"q={SALES_3}", ["late", "night"]),
    ("q=carol", ["cli"]),
    ("status__exact=failed", ["late"]),
    ("origin__exact=handover", ["midnight"]),
    ("requested_by_username=alice", ["midnight", "night"]),
    ("created_at__year=2026&created_at__month=3&created_at__day=1", ["late", "night"]),
])
def test_it_lets_an_admin_search_and_filter_the_audit_log(admin_client, rows, query, expected):
    response = admin_client.get(f"/admin/queues/reroute/?{query}")
    assert response.status_code == 200
    assert admin_listed(response) == ids(rows, *expected)


def test_it_finds_a_reroute_and_its_events_by_number_in_the_admin(admin_client, rows):
    late, night = rows["late"], rows["night"]
    event = RerouteEvent.objects.create(reroute=late, kind="failed", message="SparkBot refused the route.")
    RerouteEvent.objects.create(reroute=night, kind="succeeded", message="Moved 37 messages.")
    assert late.pk in admin_listed(admin_client.get(f"/admin/queues/reroute/?q={late.pk}"))  # (or digits of a phone)
    assert admin_listed(admin_client.get(f"/admin/queues/rerouteevent/?q={late.pk}")) == [event.pk]
    assert len(admin_listed(admin_client.get("/admin/queues/rerouteevent/?q=refused"))) == 1


def test_it_offers_dates_filters_and_the_site_page_in_the_admin(admin_client, rows):
    html = admin_client.get("/admin/queues/reroute/").content.decode()
    assert '<a href="?created_at__month=3&amp;created_at__year=2026">March 2026</a>' in html  # the date hierarchy
    assert "By status" in html and "By origin" in html and "By requested by" in html
    change = admin_client.get(f"/admin/queues/reroute/{rows['night'].pk}/change/").content.decode()
    assert f'/reroutes/{rows["night"].pk}/' in change  # "View on site": the whole story
    events = admin_client.get("/admin/queues/rerouteevent/").content.decode()
    assert "By kind" in events and "By at" in events
