"""Exports of the history (CSV and JSON lines): exactly the filtered set, streamed, formulas neutralised."""

import csv
import io
import json
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.http import StreamingHttpResponse

from queues import history
from queues.models import HandoverRun
from queues.tests.test_history import make_reroute
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
UTC = dt_timezone.utc
HEADER = ["id", "created_at", "requested_by_username", "origin", "handover_run_id", "source_id", "source_alias",
          "source_phone", "target_id", "target_alias", "target_phone", "note", "status", "attempts", "started_at",
          "ended_at", "messages_moved", "error_code", "error_message", "duration_seconds"]
FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1:A9)", "\tcmd", "\rcmd"]


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def rows(db):
    run = HandoverRun.objects.create(plan_name="Night", started_by_username="manager")
    return {
        "first": make_reroute(when=datetime(2026, 4, 1, 9, 0, 0, 250000, tzinfo=UTC), user="alice",
                              source=SALES_3, target=SALES_4, note="Night shift, \"quoted\"\nsecond line",
                              moved=37, seconds=1.25),
        "failed": make_reroute(when=datetime(2026, 4, 1, 21, 30, tzinfo=UTC), user="bob", source=SALES_1,
                               target=SALES_3, note="=1+2", status="failed", moved=None, origin="api",
                               error_code="refused", error_message="-SparkBot refused the route (409)."),
        "handover": make_reroute(when=datetime(2026, 4, 2, 6, 0, tzinfo=UTC), user="carol", source=SALES_2,
                                 target=SALES_1, origin="handover", handover_run=run, moved=0, seconds=0.5),
        "queued": make_reroute(user="bob", source=SALES_4, target=SALES_2, note="@later", status="queued"),
    }


def csv_rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def jsonl_rows(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    assert text.endswith("\n") or text == ""
    return [json.loads(line) for line in text.splitlines()]


def test_it_exports_exactly_the_filtered_rows_as_csv(admin_client, rows):
    response = admin_client.get("/history/export.csv?date_from=2026-04-01&date_to=2026-04-01")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="reroutes-')
    assert response["Content-Disposition"].endswith('.csv"')
    failed, first = rows["failed"], rows["first"]
    assert csv_rows(response) == [
        HEADER,
        [str(failed.pk), iso(datetime(2026, 4, 1, 21, 30)), "bob", "api",
         "", SALES_1, "Sales-1", "'+447700900001", SALES_3, "Sales-3", "'+447700900003", "'=1+2", "failed", "1",
         "", iso(datetime(2026, 4, 1, 21, 30, 2, 500000)), "", "refused", "'-SparkBot refused the route (409).",
         "2.5"],
        [str(first.pk), iso(datetime(2026, 4, 1, 9, 0, 0, 250000)), "alice", "web", "", SALES_3, "Sales-3",
         "'+447700900003", SALES_4, "Sales-4", "'+447700900004", "Night shift, \"quoted\"\nsecond line",
         "succeeded", "1", "", iso(datetime(2026, 4, 1, 9, 0, 1, 500000)), "37", "", "", "1.25"],
    ]


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def iso(moment: datetime) -> str:
    """A UTC time as the export writes it: ISO 8601 with a Z (PostgreSQL always writes the microseconds)."""
    if is_postgres() or moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_it_exports_exactly_the_filtered_rows_as_json_lines(admin_client, rows):
    response = admin_client.get(f"/history/export.jsonl?device={SALES_1}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].endswith('.jsonl"')
    handover, failed = rows["handover"], rows["failed"]
    assert jsonl_rows(response) == [
        {"id": handover.pk, "created_at": iso(datetime(2026, 4, 2, 6, 0)), "requested_by_username": "carol",
         "origin": "handover", "handover_run_id": handover.handover_run_id, "source_id": SALES_2,
         "source_alias": "Sales-2", "source_phone": "+447700900002", "target_id": SALES_1, "target_alias": "Sales-1",
         "target_phone": "+447700900001", "note": "", "status": "succeeded", "attempts": 1, "started_at": None,
         "ended_at": iso(datetime(2026, 4, 2, 6, 0, 0, 500000)), "messages_moved": 0, "error_code": "",
         "error_message": "", "duration_seconds": 0.5},
        {"id": failed.pk, "created_at": iso(datetime(2026, 4, 1, 21, 30)), "requested_by_username": "bob",
         "origin": "api", "handover_run_id": None, "source_id": SALES_1, "source_alias": "Sales-1",
         "source_phone": "+447700900001", "target_id": SALES_3, "target_alias": "Sales-3",
         "target_phone": "+447700900003", "note": "=1+2", "status": "failed", "attempts": 1, "started_at": None,
         "ended_at": iso(datetime(2026, 4, 1, 21, 30, 2, 500000)), "messages_moved": None, "error_code": "refused",
         "error_message": "-SparkBot refused the route (409).", "duration_seconds": 2.5},
    ]  # JSON is data, not a spreadsheet: values exactly as stored


@pytest.mark.parametrize("query, expected", [
    ("", ["queued", "handover", "failed", "first"]),
    ("status=failed", ["failed"]),
    ("status=queued", ["queued"]),
    ("user=bob", ["queued", "failed"]),
    ("origin=handover", ["handover"]),
    (f"device={SALES_4}", ["queued", "first"]),
    ("q=night+shift", ["first"]),
    ("q=%2B447700900002", ["queued", "handover"]),
    ("date_from=2026-04-02", ["queued", "handover"]),
    ("status=failed&before=1", ["failed"]),  # the page position is not a filter: the whole set
    ("status=succeeded&after=99999999", ["handover", "first"]),
    ("status=failed&before=not-a-position", ["failed"]),
])
def test_it_exports_the_same_set_the_history_shows(admin_client, rows, query, expected):
    want = [rows[name].pk for name in expected]
    assert [int(row[0]) for row in csv_rows(admin_client.get(f"/history/export.csv?{query}"))[1:]] == want
    assert [row["id"] for row in jsonl_rows(admin_client.get(f"/history/export.jsonl?{query}"))] == want
    if "before" not in query and "after" not in query:
        page = history.history_page(filters=filters_of(query))
        assert [r.pk for r in page.rows] == want


def filters_of(query: str) -> history.HistoryFilters:
    from django.http import QueryDict

    from queues.forms import HistoryFilterForm

    form = HistoryFilterForm(QueryDict(query))
    assert form.is_valid(), form.errors
    return form.filters()


def test_it_writes_a_header_row_even_when_nothing_matches(admin_client, rows):
    assert csv_rows(admin_client.get("/history/export.csv?user=nobody")) == [HEADER]
    assert jsonl_rows(admin_client.get("/history/export.jsonl?user=nobody")) == []


@pytest.mark.parametrize("text", FORMULAS)
def test_it_neutralises_every_cell_a_spreadsheet_would_run(admin_client, db, text):
    make_reroute(note=text, user=text, error_code=text, error_message=text)
    header, row = csv_rows(admin_client.get("/history/export.csv"))
    cells = dict(zip(header, row))
    for name in ("note", "requested_by_username", "error_code", "error_message"):
        assert cells[name] == "'" + text, name
    formula_starts = ("=", "+", "-", "@", "\t", "\r")
    assert not [cell for cell in row if cell.startswith(formula_starts)]
    assert jsonl_rows(admin_client.get("/history/export.jsonl"))[0]["note"] == text


def test_it_leaves_ordinary_text_alone(admin_client, db):
    for note in ["plain", " =not a formula (leading space)", "3-2", "a=b", "", "«Zürich» 🎧"]:
        make_reroute(note=note)
    notes = [dict(zip(HEADER, row))["note"] for row in csv_rows(admin_client.get("/history/export.csv"))[1:]]
    assert notes == ["«Zürich» 🎧", "", "a=b", "3-2", " =not a formula (leading space)", "plain"]


def test_it_streams_the_rows_in_chunks(rows):
    filters = history.HistoryFilters()
    pieces = list(history.export_csv(filters=filters, chunk_size=2))
    assert len(pieces) == 3 and "".join(pieces) == "".join(history.export_csv(filters=filters))
    assert pieces[0].startswith("id,created_at,") and pieces[0].count("\r\n") == 3  # the header and two rows
    lines = list(history.export_jsonl(filters=filters, chunk_size=3))
    assert len(lines) == 2 and "".join(lines) == "".join(history.export_jsonl(filters=filters))


def test_it_orders_a_date_range_export_by_time(admin_client, db):
    start = datetime(2026, 6, 1, tzinfo=UTC)
    made = [make_reroute(when=start + timedelta(minutes=(n * 7) % 11)) for n in range(11)]
    by_time = [r.pk for r in sorted(made, key=lambda r: (r.created_at, r.pk), reverse=True)]
    exported = [int(row[0]) for row in csv_rows(admin_client.get("/history/export.csv?date_from=2026-06-01"))[1:]]
    assert exported == by_time


def test_it_lets_only_admins_export(client, make_user, rows):
    for role, status in [("Support lead", 403), ("Shift manager", 403), (None, 403), ("Admin", 200)]:
        client.force_login(make_user(f"user-{role}", role))
        for url in ("/history/export.csv", "/history/export.jsonl"):
            assert client.get(url).status_code == status, (role, url)


def test_it_refuses_bad_filters_with_a_reason_and_exports_nothing(admin_client, rows):
    response = admin_client.get("/history/export.csv?device=nope&q=ab")
    assert response.status_code == 400 and response["Content-Type"] == "text/plain; charset=utf-8"
    text = response.content.decode()
    assert text.startswith("The filters are not valid; nothing was exported.")
    assert "Device: A device id is 24 characters" in text and "Search: Type at least 3 characters" in text
    assert admin_client.get("/history/export.jsonl?status=lost").status_code == 400


def test_it_asks_no_cache_to_keep_the_export(admin_client, rows):
    response = admin_client.get("/history/export.csv")
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
