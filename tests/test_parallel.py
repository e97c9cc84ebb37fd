"""Test processes side by side never share a Redis database or a var folder (tests/parallel.py)."""

import os
from pathlib import Path

import pytest

from tests.parallel import ROOT, isolate, own_redis_database


def test_each_process_takes_the_database_numbered_below_the_last_wrapping_round():
    assert own_redis_database("redis://127.0.0.1:6379/15", 0) == "redis://127.0.0.1:6379/15"
    assert own_redis_database("redis://127.0.0.1:6379/15", 1) == "redis://127.0.0.1:6379/14"
    assert own_redis_database("redis://127.0.0.1:6379/0", 1) == "redis://127.0.0.1:6379/15"
    assert own_redis_database("redis://127.0.0.1:6379", 2) == "redis://127.0.0.1:6379/14"
    assert own_redis_database("rediss://:secret@cache:6380/3", 1) == "rediss://:secret@cache:6380/2"


def test_it_refuses_a_redis_url_that_names_no_database_it_can_change():
    with pytest.raises(ValueError, match="TEST_PROCESSES=0"):
        own_redis_database("unix:///run/redis.sock?db=15", 1)


def test_it_gives_each_process_a_var_folder_of_its_own_and_a_redis_database_when_there_is_redis():
    first, second = {"REDIS_URL": "redis://127.0.0.1:6379/9", "SPARKBOT_DASH_VAR_DIR": "/tmp/var"}, {}
    isolate(first, "gw1")
    isolate(second, "gw3")
    assert first == {"REDIS_URL": "redis://127.0.0.1:6379/8", "SPARKBOT_DASH_VAR_DIR": "/tmp/var/gw1"}
    assert second == {"SPARKBOT_DASH_VAR_DIR": str(ROOT / "var" / "gw3")}


@pytest.mark.embedded
def test_the_settings_of_a_process_side_by_side_name_its_own_folder(settings):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        pytest.skip("this run is one process (TEST_PROCESSES=0)")
    assert Path(settings.VAR_DIR).name == worker  # the filesystem broker's folders and SQLite's files are under it
