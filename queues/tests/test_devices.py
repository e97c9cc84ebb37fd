"""The shared device list: one walk of GET /devices per cold cache, whatever the load."""

import threading

import pytest

from queues import devices, sparkbot
from sparkbot_sandbox.seed import SALES_3, SEED_DEVICES

pytestmark = pytest.mark.embedded


def device_walks(sandbox) -> int:
    """How many times GET /devices was walked from its first page."""
    return sum(1 for c in sandbox.calls(method="GET") if c["path"].endswith("/devices") and c["query"].get("page") == "0")


def test_it_loads_every_device_once_and_then_serves_the_cache(sandbox):
    first = devices.device_list()
    second = devices.device_list()
    assert [d.id for d in first.devices] == [d["id"] for d in SEED_DEVICES]
    assert second.version == first.version
    assert device_walks(sandbox) == 1


def test_it_makes_one_walk_for_many_concurrent_cold_requests(sandbox):
    sandbox.control("POST", "/latency", json={"ms": 150})  # keep the walk in flight while others arrive
    barrier = threading.Barrier(16)
    results, errors = [], []

    def ask():
        barrier.wait()
        try:
            results.append(devices.device_list().version)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(results) == 16 and len(set(results)) == 1
    assert device_walks(sandbox) == 1


def test_it_refetches_on_refresh(sandbox):
    first = devices.device_list()
    sandbox.control("POST", f"/devices/{SALES_3}/remove")
    devices.device_list_forget()  # the previous refresh would otherwise be reused for 2 s
    refreshed = devices.device_list(refresh=True)
    assert refreshed.version != first.version
    assert refreshed.get(SALES_3) is None and first.get(SALES_3) is not None
    assert device_walks(sandbox) == 2


def test_it_reuses_a_refresh_made_a_moment_ago(sandbox):
    devices.device_list(refresh=True)
    devices.device_list(refresh=True)
    assert device_walks(sandbox) == 1


def test_it_raises_the_sparkbot_error_and_caches_nothing(sandbox):
    sandbox.fault(route="devices_list", status=401, times=1)
    with pytest.raises(sparkbot.AuthenticationFailed):
        devices.device_list()
    assert devices.device_list().get(SALES_3) is not None


def test_it_renders_the_options_once_per_list_and_escapes_aliases(sandbox):
    device_list = devices.device_list()
    html = device_list.options_html()
    assert device_list.options_html() is html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count("<option") == len(SEED_DEVICES) + 1


def test_it_reads_queue_stats(sandbox):
    stats = devices.queue_stats(device_id=SALES_3)
    assert (stats.total, stats.pending, stats.processing) == (37, 35, 2)
