"""The shared device list: one walk of GET /devices at a time, whatever the load, in one process or many;
a failed walk remembered for a few seconds; a stale list answered at once while one walk refreshes it."""

import os
import subprocess
import sys
import threading
import time

import pytest
from django.core.cache import cache

from queues import devices, sparkbot
from sparkbot_sandbox.seed import SALES_2, SALES_3, SEED_DEVICES
from sparkbot_sandbox.state import DEFAULT_API_KEY, SandboxState
from tests.support import ROOT, Sandbox, sparkbot_settings

pytestmark = pytest.mark.embedded
needs_redis = pytest.mark.skipif(not hasattr(cache, "lock"),
                                 reason="needs Redis as the cache (make test-production)")


def device_walks(sandbox) -> int:
    """How many times GET /devices was walked from its first page."""
    return sum(1 for c in sandbox.calls(method="GET") if c["path"].endswith("/devices") and c["query"].get("page") == "0")


def concurrently(count: int, ask) -> list:
    """Run `ask` in `count` threads released at the same moment; their answers (none may raise)."""
    outcomes = concurrent_outcomes(count, ask)
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    return outcomes


def concurrent_outcomes(count: int, ask) -> list:
    """Run `ask` in `count` threads released at the same moment; each one's answer or exception."""
    barrier = threading.Barrier(count)
    outcomes, lock = [], threading.Lock()

    def run():
        barrier.wait()
        try:
            outcome = ask()
        except Exception as error:
            outcome = error
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == count
    return outcomes


def timed(ask):
    """`ask` wrapped to answer (seconds it took, its answer or exception)."""
    def run():
        started = time.monotonic()
        try:
            answer = ask()
        except Exception as error:
            answer = error
        return time.monotonic() - started, answer
    return run


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_it_loads_every_device_once_and_then_serves_the_cache(sandbox):
    first = devices.device_list()
    second = devices.device_list()
    assert [d.id for d in first.devices] == [d["id"] for d in SEED_DEVICES]
    assert second.version == first.version
    assert device_walks(sandbox) == 1


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


def test_it_shares_one_walk_between_the_background_refresh_and_the_pages(sandbox):
    sandbox.control("POST", "/latency", json={"ms": 150})
    asks = iter([devices.device_list_refresh, devices.device_list, lambda: devices.device_list(refresh=True)] * 3)
    answers = concurrently(9, lambda: next(asks)())
    assert len({answer.version for answer in answers}) == 1
    assert device_walks(sandbox) == 1
    assert devices.device_list_refresh().version != answers[0].version  # a walk after the call, always
    assert device_walks(sandbox) == 2


@pytest.fixture(scope="module")
def sandbox_of_26_pages():
    """A sandbox with 2,500 devices: a walk of GET /devices takes 26 pages."""
    box = Sandbox(state=SandboxState(extra_devices=2500 - len(SEED_DEVICES)))
    yield box
    box.stop()


def test_it_makes_one_walk_when_the_walk_outlasts_a_page_timeout_many_times(sandbox_of_26_pages, settings):
    # 26 pages x 0.3 s = 7.8 s, longer than the old lock's lifetime (3 x timeout + 5 s) and wait.
    box = sandbox_of_26_pages
    box.reset()
    settings.SPARKBOT_DEVICE_WAIT_SECONDS = 20
    with sparkbot_settings(SPARKBOT_API_URL=box.api_url, SPARKBOT_TIMEOUT=0.5):
        box.control("POST", "/latency", json={"ms": 300})
        lists = concurrently(8, devices.device_list)
        assert {len(found.devices) for found in lists} == {2500}
        assert len({found.version for found in lists}) == 1
        assert device_walks(box) == 1
        devices.device_list_forget()


def test_it_lets_only_its_owner_release_or_extend_the_walk_lock(sandbox):
    first = devices.walk_lock(lifetime=0.3)
    assert first.acquire()
    assert not devices.walk_lock().acquire()
    time.sleep(0.5)  # the first walker froze past its lock's lifetime; a second one takes over
    second = devices.walk_lock()
    assert second.acquire()
    first.release()
    assert first.extend() is False
    assert not devices.walk_lock().acquire(), "the first walker freed the second one's lock"
    assert second.extend() is True
    second.release()
    third = devices.walk_lock()
    assert third.acquire()
    third.release()


def test_it_remembers_a_failed_walk_for_a_few_seconds_and_then_walks_again(sandbox, settings):
    settings.SPARKBOT_DEVICE_ERROR_CACHE_SECONDS = 1
    sandbox.fault(route="devices_list", status=401, times=1)
    with pytest.raises(sparkbot.AuthenticationFailed) as first:
        devices.device_list()
    with pytest.raises(sparkbot.AuthenticationFailed) as remembered:
        devices.device_list(refresh=True)
    assert remembered.value.describe() == first.value.describe()
    assert device_walks(sandbox) == 1
    time.sleep(1.1)
    assert devices.device_list().get(SALES_3) is not None
    assert device_walks(sandbox) == 2


def test_it_answers_concurrent_requests_for_a_failing_walk_with_one_walk_and_quick_errors(sandbox):
    sandbox.control("POST", "/latency", json={"ms": 200})
    sandbox.fault(route="devices_list", status=500, times=100, body=f"upstream rejected {DEFAULT_API_KEY}")
    outcomes = concurrent_outcomes(8, timed(devices.device_list))
    outcomes += [timed(devices.device_list)() for _ in range(4)]  # the next requests: no walk at all
    assert all(isinstance(error, sparkbot.Unavailable) for _seconds, error in outcomes)
    assert {error.describe() for _seconds, error in outcomes} == {"SparkBot did not answer (500)."}
    assert max(seconds for seconds, _error in outcomes) < 1.0  # one walk's time, not eight in turn
    assert device_walks(sandbox) == 1
    assert DEFAULT_API_KEY not in repr(cache.get(devices.cache_keys().error))


def test_it_answers_a_stale_list_at_once_and_refreshes_it_with_one_walk(sandbox, settings):
    settings.SPARKBOT_DEVICE_CACHE_SECONDS = 1
    stale = devices.device_list()
    sandbox.control("POST", f"/devices/{SALES_3}/remove")
    sandbox.control("POST", "/latency", json={"ms": 600})
    time.sleep(1.1)
    outcomes = concurrently(8, timed(devices.device_list))
    assert {answer.version for _seconds, answer in outcomes} == {stale.version}
    assert max(seconds for seconds, _answer in outcomes) < 0.3  # not the 600 ms walk
    wait_until(lambda: timed(devices.device_list)()[1].version != stale.version)
    assert devices.device_list().get(SALES_3) is None
    assert device_walks(sandbox) == 2


def test_it_says_the_list_is_still_loading_when_none_arrives_in_time(sandbox, settings):
    settings.SPARKBOT_DEVICE_WAIT_SECONDS = 0.3
    sandbox.fault(route="devices_list", hang_seconds=0.8)  # slow, yet within the 1 s timeout
    seconds, error = timed(devices.device_list)()
    assert isinstance(error, devices.DeviceListLoading) and isinstance(error, sparkbot.SparkBotError)
    assert seconds < 0.7
    assert error.describe() == "The device list is still loading from SparkBot; try again in a moment."
    wait_until(lambda: not isinstance(timed(devices.device_list)()[1], Exception))  # the walk went on
    assert devices.device_list().get(SALES_3) is not None
    assert device_walks(sandbox) == 1


def test_it_bounds_the_wait_of_a_refresh_too(sandbox, settings):
    devices.device_list()
    settings.SPARKBOT_DEVICE_WAIT_SECONDS = 0.3
    sandbox.fault(route="devices_list", hang_seconds=0.8)
    clicked = time.time()
    seconds, error = timed(lambda: devices.device_list(refresh=True))()
    assert isinstance(error, devices.DeviceListLoading) and seconds < 0.7
    wait_until(lambda: devices.device_list().fetched_at >= clicked)  # the walk went on
    assert device_walks(sandbox) == 2


@pytest.fixture(scope="module")
def sandbox_of_16_pages():
    """A sandbox with 1,500 devices: a walk of GET /devices takes 16 pages."""
    box = Sandbox(state=SandboxState(extra_devices=1500 - len(SEED_DEVICES)))
    yield box
    box.stop()


WALKER = """
import sys, django
django.setup()
from queues import devices
print("ready", flush=True)
sys.stdin.readline()
found = devices.device_list_refresh()
print(found.version, len(found.devices), flush=True)
"""


@needs_redis
def test_it_makes_one_walk_across_processes_however_long_it_takes(sandbox_of_16_pages):
    # 16 pages x 0.3 s = 4.8 s, longer than one page's lock lifetime (3 x 0.5 s + 2 s): the walker extends it.
    box = sandbox_of_16_pages
    box.reset()
    box.control("POST", "/latency", json={"ms": 300})
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sparkbot_dash.settings", "SPARKBOT_API_URL": box.api_url,
           "SPARKBOT_TIMEOUT": "0.5", "PYTHONUNBUFFERED": "1"}
    walkers = [subprocess.Popen([sys.executable, "-c", WALKER], cwd=ROOT, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(3)]
    try:
        for walker in walkers:
            assert walker.stdout.readline().strip() == "ready"
        for walker in walkers:
            walker.stdin.write("go\n")
            walker.stdin.flush()
        answers = [walker.communicate(timeout=60)[0].split() for walker in walkers]
    finally:
        for walker in walkers:
            walker.kill()
    assert [walker.returncode for walker in walkers] == [0, 0, 0]
    assert {answer[1] for answer in answers} == {"1500"} and len({answer[0] for answer in answers}) == 1
    assert device_walks(box) == 1


def test_it_reads_queue_stats(sandbox):
    stats = devices.queue_stats(device_id=SALES_3)
    assert (stats.total, stats.pending, stats.processing) == (37, 35, 2)


def test_it_asks_sparkbot_directly_when_the_cache_is_down(sandbox, settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing listens on port 1
    assert devices.device_list().get(SALES_3).alias == "Sales-3"
    assert device_walks(sandbox) == 1
    assert "device cache unavailable (" in caplog.text


def test_it_reads_the_shared_list_again_only_when_another_walk_stored_a_new_one(sandbox):
    first = devices.device_list()
    assert devices.device_list() is first  # the version key matched: nothing unpickled
    sandbox.control("POST", f"/devices/{SALES_2}/remove")
    refreshed = devices.device_list_refresh()
    assert devices.device_list() is not first and devices.device_list().version == refreshed.version
    assert devices.device_list().get(SALES_2) is None
