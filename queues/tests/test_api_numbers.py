"""The API's numbers: the fleet monitor's state of each number and its queue depth, as monitor.py wrote it."""

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from queues import monitor, tokens
from queues.models import Number
from sparkbot_sandbox.seed import OFFLINE_DEVICE, SALES_3, SEED_DEVICES

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def get(lead):
    raw = tokens.token_create(owner=lead, name="numbers").secret
    return lambda path: Client().get(path, HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_it_lists_every_number_the_monitor_read_with_its_queue(get, sandbox):
    monitor.monitor_cycle()
    body = get("/api/v1/numbers").json()
    assert len(body["items"]) == len(SEED_DEVICES) and body["monitor"]["cycle_ended_at"]
    sales_3 = next(n for n in body["items"] if n["id"] == SALES_3)
    assert sales_3["alias"] == "Sales-3" and sales_3["can_deliver"] is True and sales_3["listed"] is True
    assert sales_3["queue"]["total"] == 37 and sales_3["queue"]["pending"] == 35 and sales_3["queue"]["read_at"]
    offline = next(n for n in body["items"] if n["id"] == OFFLINE_DEVICE)
    assert offline["session_status"] == "offline" and offline["can_deliver"] is False


def test_it_reads_one_number_with_its_depth_over_the_day(get, sandbox):
    monitor.monitor_cycle()
    body = get(f"/api/v1/numbers/{SALES_3}").json()
    assert body["id"] == SALES_3 and len(body["depth_24h"]) == len(Number.objects.get(device_id=SALES_3).depth_24h)
    slot_start, depth = body["depth_24h"][-1]
    started = datetime.fromisoformat(slot_start)  # as the schema says: [slot start (ISO 8601), depth]
    assert depth == 37 and started.minute in (0, 30) and timedelta(0) <= timezone.now() - started < timedelta(
        minutes=30)
    assert get(f"/api/v1/numbers/{SALES_3.upper()}").json()["id"] == SALES_3  # an id in capitals, as elsewhere


def test_it_answers_404_for_a_number_the_monitor_has_not_seen_and_422_for_no_id(get, sandbox):
    assert get(f"/api/v1/numbers/{'0' * 24}").status_code == 404
    assert get("/api/v1/numbers/Sales-3").status_code == 422
