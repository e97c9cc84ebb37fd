#!/usr/bin/env python
"""Measure the reroute history at scale on PostgreSQL: its pages and its export.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sparkbot_dash_bench REDIS_URL=redis://127.0.0.1:6379/10 \\
      .venv/bin/python bench/history.py                 # 1,000,000 reroutes, as docs/PERFORMANCE.md reports
    .venv/bin/python bench/history.py --rows 100000 --keepdb --explain

Creates a fresh test database (test_<name>; dropped at the end unless --keepdb), fills it
with bench/seed_history.py's seed_history(rows=N) (timed), runs VACUUM ANALYZE as autovacuum would
have by then, and times server-side (Django's handler in process, test client, a signed-in
Admin) the history's first page, filtered pages, a page 500 deep, and the CSV and JSONL
exports (rows/s, and peak memory against a ten times smaller export). Each page's slowest
query on reroutes and the database's share of the request are printed; --explain adds
that query's EXPLAIN (ANALYZE, BUFFERS).
"""

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")
os.environ.setdefault("SECRET_KEY", "insecure-key-for-benchmarks-only")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # its test client speaks plain HTTP

from tests.support import percentile, timing_summary  # noqa: E402

DEEP_PAGE = 500  # the page measured deep down the history
TARGET_PAGE_P95_MS = 50
TARGET_EXPORT_ROWS_PER_SECOND = 50_000
DATE_FROM, DATE_TO = "date_from", "date_to"  # the history form's names for its "from" and "to" filters


def proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux)


# Setting up ---------------------------------------------------------------------------------


def database_ready(rows: int, keepdb: bool, seed: int) -> float | None:
    """Create (or with --keepdb reuse) the test database and seed it; the seconds seeding took, or None."""
    from django.db import connection

    from bench.seed_history import seed_history, summary
    from queues.models import Reroute

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=keepdb)
    have = Reroute.objects.count()
    if keepdb and have >= rows:
        print(f"reusing test database {connection.settings_dict['NAME']} with {have:,} reroutes", flush=True)
        return None
    started = time.perf_counter()
    report = seed_history(rows=rows - have, seed=seed)
    seconds = time.perf_counter() - started
    print(summary(report), flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in ("queues_reroute", "queues_rerouteevent", "queues_handoverrun", "queues_handoverrunitem"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"VACUUM ANALYZE: {time.perf_counter() - started:.1f} s", flush=True)
    return seconds


def admin_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    from conftest import user_with_role
    from queues.roles import ADMIN

    user = get_user_model().objects.filter(username="bench-admin").first() or user_with_role("bench-admin", ADMIN)
    client = Client()
    client.force_login(user)
    return client


# Pages --------------------------------------------------------------------------------------


def time_page(client, url: str, requests: int) -> list[float]:
    for _ in range(5):  # warm: connections, caches, the first plan
        assert client.get(url).status_code == 200, url
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, url
    return timings


def database_share(client, url: str, explain: bool) -> str:
    """How much of one request the database took, and the history's own slowest query
    (timed here, to the microsecond), with its EXPLAIN (ANALYZE, BUFFERS) when asked."""
    from django.db import connection

    timed = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append((time.perf_counter() - started, sql, params))

    with connection.execute_wrapper(timer):
        started = time.perf_counter()
        client.get(url)
        whole = time.perf_counter() - started
    own = [t for t in timed if '"queues_reroute"' in t[1]] or timed
    seconds, sql, params = max(own, key=lambda t: t[0])
    with connection.cursor() as cursor:
        statement = connection.ops.compose_sql(sql, params) if params else sql  # values written in
        text = (f"    {len(timed)} queries took {sum(t[0] for t in timed) * 1000:.1f} ms of the request's "
                f"{whole * 1000:.1f} ms; the slowest on reroutes {seconds * 1000:.1f} ms")
        if explain:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
            text += f":\n      {statement}\n" + "\n".join(f"      {line}" for (line,) in cursor.fetchall())
    return text


def page_urls(client) -> dict[str, str]:
    """The pages to time, with filters that find rows in the seeded history."""
    from django.db.models import Count

    from queues.history import PAGE_SIZE
    from queues.models import Reroute

    busiest = (Reroute.objects.values("source_id").annotate(n=Count("id")).order_by("-n")
               .values_list("source_id", flat=True).first())
    user = (Reroute.objects.values("requested_by_username").annotate(n=Count("id")).order_by("n")
            .values_list("requested_by_username", flat=True).first())
    # Page n starts below the last row of page n-1: before=<its id>, as the pager links it.
    deep_cursor = Reroute.objects.order_by("-id").values_list("id", flat=True)[PAGE_SIZE * (DEEP_PAGE - 1) - 1]
    failed_cursor = (Reroute.objects.filter(status="failed").order_by("-id")
                     .values_list("id", flat=True)[PAGE_SIZE * 99 - 1])
    newest = Reroute.objects.order_by("-id").values_list("created_at", flat=True).first()
    month = {DATE_FROM: (newest - timedelta(days=400)).date().isoformat(),
             DATE_TO: (newest - timedelta(days=370)).date().isoformat(), "status": "failed"}
    return {
        "first page": "/history/",
        "filtered: one month (from/to) & status=failed": f"/history/?{urlencode(month)}",
        "filtered: status=failed & q=lisbon": "/history/?status=failed&q=lisbon",
        "filtered: device (busiest number)": f"/history/?device={busiest}",
        "filtered: q=夜間対 (rare, Unicode)": f"/history/?{urlencode({'q': '夜間対'})}",
        "filtered: user (quietest) & origin=handover": f"/history/?{urlencode({'user': user, 'origin': 'handover'})}",
        f"page {DEEP_PAGE} (before=<id>)": f"/history/?before={deep_cursor}",
        "page 100 of status=failed": f"/history/?status=failed&before={failed_cursor}",
    }


def check_deep_page(client, url: str) -> None:
    """The deep cursor is the one the pager gives: its page starts right below it."""
    from queues.history import PAGE_SIZE
    from queues.models import Reroute

    cursor = int(url.rsplit("=", 1)[1])
    first_row = Reroute.objects.filter(id__lt=cursor).order_by("-id").values_list("id", flat=True).first()
    body = client.get(url).content.decode()
    assert f"/reroutes/{first_row}/" in body, "the deep page does not start where the cursor says"
    rank = Reroute.objects.filter(id__gte=first_row).count()
    assert rank == PAGE_SIZE * (DEEP_PAGE - 1) + 1, rank


# Export -------------------------------------------------------------------------------------


def stream(client, url: str) -> tuple[int, float, int]:
    """(rows, seconds, peak RSS growth in KiB) of one export, read to its end as a client would."""
    reset_peak_rss()
    baseline = proc_status_kib("VmRSS")
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, url
    lines = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    response.close()
    return lines, seconds, proc_status_kib("VmHWM") - baseline


def python_peak(client, url: str) -> int:
    """Peak bytes Python allocated while streaming (tracemalloc: slow, so measured apart)."""
    tracemalloc.start()
    try:
        response = client.get(url)
        for _ in response.streaming_content:
            pass
        response.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure_exports(client, runs: int) -> list[str]:
    from django.utils import timezone

    from queues.models import Reroute

    newest = Reroute.objects.order_by("-id").values_list("created_at", flat=True).first()
    oldest = Reroute.objects.order_by("id").values_list("created_at", flat=True).first()
    tenth = timezone.localtime(newest - (newest - oldest) / 10 + timedelta(days=1)).date()
    small = f"?{DATE_FROM}={tenth.isoformat()}"
    lines = []
    for kind in ("csv", "jsonl"):
        full_url, small_url = f"/history/export.{kind}", f"/history/export.{kind}{small}"
        stream(client, small_url)  # warm
        results = [stream(client, full_url) for _ in range(runs if kind == "csv" else 1)]
        rows = results[0][0] - (1 if kind == "csv" else 0)
        rates = [rows / seconds for _, seconds, _ in results]
        small_rows, small_seconds, small_rss = stream(client, small_url)
        small_rows -= 1 if kind == "csv" else 0
        full_py, small_py = python_peak(client, full_url), python_peak(client, small_url)
        lines += [
            f"GET /history/export.{kind}: {rows:,} rows; runs "
            + ", ".join(f"{s:.1f} s = {r:,.0f} rows/s" for (_, s, _), r in zip(results, rates))
            + f" (median {statistics.median(rates):,.0f} rows/s)",
            f"    peak RSS growth {max(r for _, _, r in results) / 1024:.1f} MiB for {rows:,} rows against "
            f"{small_rss / 1024:.1f} MiB for {small_rows:,} rows ({small_url}, "
            f"{small_rows / small_seconds:,.0f} rows/s)",
            f"    peak Python allocations (tracemalloc) {full_py / 2**20:.1f} MiB for {rows:,} rows against "
            f"{small_py / 2**20:.1f} MiB for {small_rows:,} rows",
        ]
        print("\n".join(lines[-3:]), flush=True)
    return lines


# Main ---------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="Reroutes in the history (default 1,000,000; at least 50,000 for the deep pages).")
    parser.add_argument("--requests", type=int, default=200, help="Timed requests per page (default 200).")
    parser.add_argument("--export-runs", type=int, default=3, help="Full CSV exports timed (default 3).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keepdb", action="store_true", help="Keep the test database, and reuse it if seeded.")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest query.")
    args = parser.parse_args()
    if args.rows < 50_000:
        parser.error("--rows must be at least 50,000: page 500 needs 25,000 rows, page 100 of failed ones 5,000.")

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/history.py measures PostgreSQL only: set DATABASE_URL=postgres://... "
                 f"(this run would use {connection.vendor}).")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host; no other test setup
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    test_db = None
    try:
        seed_seconds = database_ready(args.rows, args.keepdb, args.seed)
        test_db = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
        print(f"PostgreSQL {version}; {args.rows:,} reroutes; {os.cpu_count()} cores", flush=True)
        if seed_seconds is not None:
            print(f"bench/seed_history.py --rows {args.rows}: {seed_seconds:.1f} s "
                  f"({args.rows / seed_seconds:,.0f} rows/s)", flush=True)
        client = admin_client()
        urls = page_urls(client)
        check_deep_page(client, urls[f"page {DEEP_PAGE} (before=<id>)"])
        verdicts = []
        for name, url in urls.items():
            timings = time_page(client, url, args.requests)
            p95 = percentile(timings, 0.95) * 1000
            verdicts.append((name, p95))
            print(f"GET {url}\n  {name}: {timing_summary(timings)}", flush=True)
            print(database_share(client, url, args.explain), flush=True)
        export_lines = measure_exports(client, args.export_runs)
        print("\nverdicts:")
        for name, p95 in verdicts:
            print(f"  {name}: p95 {p95:.1f} ms: {'met' if p95 <= TARGET_PAGE_P95_MS else 'MISSED'} "
                  f"(target p95 <= {TARGET_PAGE_P95_MS} ms)")
        for line in export_lines:
            if "rows/s)" in line and line.startswith("GET"):
                median = float(line.rsplit("(median ", 1)[1].split(" ")[0].replace(",", ""))
                verdict = "met" if median >= TARGET_EXPORT_ROWS_PER_SECOND else "MISSED"
                print(f"  {line.split(':')[0]}: {median:,.0f} rows/s: {verdict} "
                      f"(target >= {TARGET_EXPORT_ROWS_PER_SECOND:,} rows/s)")
    finally:
        if test_db and not args.keepdb:
            connection.creation.destroy_test_db(test_db, verbosity=0)


if __name__ == "__main__":
    main()
