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


def concurrently(count: int, ask) -> list:
    """Run `ask` in `count` threads released at the same moment; their answers."""
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        barrier.wait()
        try:
            results.append(ask())
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return results


def test_it_makes_one_walk_for_many_concurrent_cold_requests(sandbox):
    sandbox.control("POST", "/latency", json={"ms": 150})  # keep the walk in flight while others arrive
    versions = concurrently(16, lambda: devices.device_list().version)
    assert len(versions) == 16 and len(set(versions)) == 1
    assert device_walks(sandbox) == 1


def test_it_refetches_on_refresh(sandbox):
    first = devices.device_list()
    sandbox.control("POST", f"/devices/{SALES_3}/remove")
    refreshed = devices.device_list(refresh=True)
    assert refreshed.version != first.version
    assert refreshed.get(SALES_3) is None and first.get(SALES_3) is not None
    assert device_walks(sandbox) == 2


def test_it_shares_one_walk_among_concurrent_refreshes(sandbox):
    devices.device_list()
    sandbox.control("POST", "/latency", json={"ms": 150})
    assert len(set(concurrently(8, lambda: devices.device_list(refresh=True).version))) == 1
    assert device_walks(sandbox) == 2


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


def test_it_asks_sparkbot_directly_when_the_cache_is_down(sandbox, settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing listens on port 1
    assert devices.device_list().get(SALES_3).alias == "Sales-3"
    assert device_walks(sandbox) == 1
    assert "device cache unavailable (ConnectionError" in caplog.text
