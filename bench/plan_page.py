#!/usr/bin/env python
"""Server time and HTML size of a big handover plan's editor, and of the route page with queue depths.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sparkbot_dash_bench REDIS_URL=redis://127.0.0.1:6379/10 \\
      .venv/bin/python bench/plan_page.py --pairs 500 --devices 1000

A plan of N pairs over the given number of numbers (the sandbox lists them; the fleet monitor's
readings of every number are seeded, so each picker shows a queue depth). Timed through Django's
handler in process (test client, a signed-in shift manager; no template instrumentation), after warm-up:
  - GET of the plan's editor (target: p95 <= 200 ms, <= 1 MB of HTML);
  - POST "Save plan" of all its pairs, and an htmx row operation ("move row 250 up");
  - GET /reroute/ with the depths (target: p95 <= 25 ms).
Runs on a fresh test database (created and dropped here) and a fresh sandbox.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkbot_dash.settings")
os.environ.setdefault("SECRET_KEY", "insecure-key-for-benchmarks-only")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # its test client speaks plain HTTP
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from sparkbot_sandbox.state import SandboxState  # noqa: E402
from tests.support import Sandbox, timing_summary  # noqa: E402


def timed(call, requests: int) -> tuple[list[float], object]:
    timings, response = [], None
    for _ in range(requests):
        started = time.perf_counter()
        response = call()
        timings.append(time.perf_counter() - started)
    return timings, response


def seed_readings(device_list) -> None:
    """What the fleet monitor would have read: every number's state and queue depth."""
    from django.utils import timezone

    from queues.models import MonitorState, Number

    now = timezone.now()
    Number.objects.bulk_create(
        Number(device_id=d.id, alias=d.alias, phone=d.phone, account_status=d.status, session_status=d.session_status,
               can_deliver=d.can_deliver, state_since=now, listed_at=now, queue_status="active",
               queue_total=(n * 37) % 400, read_at=now)
        for n, d in enumerate(device_list.devices))
    MonitorState.objects.update_or_create(pk=MonitorState.SINGLETON, defaults={"version": 1})


def plan_pairs(device_list, count: int) -> list[tuple[str, str]]:
    usable = [d.id for d in device_list.devices if d.is_usable]
    if len(usable) < count + 10:
        raise SystemExit(f"{len(usable)} usable numbers cannot make {count} pairs with distinct targets")
    sources, targets = usable[:count], usable[count:count + 10]
    return [(source, targets[n % len(targets)]) for n, source in enumerate(sources)]


def save_form(pairs, names) -> dict:
    data = {"name": "bench", "schedule": "none", "time_zone": "UTC", "pairs-TOTAL_FORMS": str(len(pairs)),
            "op": "save"}
    for n, (source, target) in enumerate(pairs):
        data[f"pairs-{n}-source"] = names.name_of(names.devices.get(source))
        data[f"pairs-{n}-target"] = names.name_of(names.devices.get(target))
    return data


def measure_plan(client, user, device_list, pairs, requests: int) -> None:
    from queues import handovers
    from queues.device_names import name_index
    from queues.models import HandoverPlan

    plan = handovers.plan_save(plan=HandoverPlan(name="bench"), pairs=pairs, user=user)
    url = f"/handovers/plans/{plan.pk}/"
    for _ in range(3):
        client.get(url)  # warm: the device list, the names and the rendered choices are cached per process
    page, response = timed(lambda: client.get(url), requests)
    size = len(response.content)
    print(f"GET {url}: {timing_summary(page)}; {size:,} bytes of HTML ({size / 1024 / 1024:.2f} MiB)")

    form = save_form(pairs, name_index(device_list))
    saves, response = timed(lambda: client.post(url, form), max(5, requests // 5))
    assert response.status_code == 302, response.content[:2000]
    print(f"POST {url} (Save plan, {len(pairs)} pairs): {timing_summary(saves)}")

    move = {**form, "op": f"up-{len(pairs) // 2}"}
    moves, response = timed(lambda: client.post(url, move, HTTP_HX_REQUEST="true"), max(5, requests // 5))
    assert response.status_code == 200 and response["HX-Retarget"] == "#pairs"
    print(f"POST {url} (htmx: move row {len(pairs) // 2 + 1} up): {timing_summary(moves)}; "
          f"{len(response.content):,} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--route-requests", type=int, default=300)
    parser.add_argument("--route-only", action="store_true", help="only the route page")
    args = parser.parse_args()

    sandbox = Sandbox(SandboxState(extra_devices=max(0, args.devices - 15)))
    os.environ["SPARKBOT_API_URL"] = sandbox.api_url
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db import connection
    from django.test import Client

    from queues import devices
    from queues.roles import SHIFT_MANAGER, roles_ensure

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host; no other test setup
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        roles_ensure(Group, Permission)
        user = get_user_model().objects.create_user("bench", password="bench-password-123")
        user.groups.add(Group.objects.get(name=SHIFT_MANAGER))
        client = Client()
        client.force_login(user)
        devices.device_list_forget()
        device_list = devices.device_list()
        seed_readings(device_list)
        pairs = plan_pairs(device_list, args.pairs)
        print(f"database: {connection.vendor}; {len(device_list.devices)} numbers, a plan of {len(pairs)} pairs",
              flush=True)
        if not args.route_only:
            measure_plan(client, user, device_list, pairs, args.requests)

        client.get("/reroute/")
        route, response = timed(lambda: client.get("/reroute/"), args.route_requests)
        assert response.status_code == 200
        print(f"GET /reroute/ with {len(device_list.devices)} numbers and their depths: {timing_summary(route)}; "
              f"{len(response.content):,} bytes")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        sandbox.stop()


if __name__ == "__main__":
    main()
