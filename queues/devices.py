"""Reads from SparkBot: the shared, cached device list, and a device's queue stats."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import LockError

from . import sparkbot
from .sparkbot import Device, QueueStats, SparkBotError

logger = logging.getLogger(__name__)
KEEP_SECONDS = 24 * 3600  # a stale list is still shown (while a walk refreshes it) for up to a day
POLL_SECONDS = 0.05  # how often a waiting request looks for a walk done by another process


class CacheKeys(NamedTuple):
    list: str
    version: str
    error: str
    lock: str


def cache_keys() -> CacheKeys:
    """Cache keys of the device list, its last failure and its walk lock, per SparkBot account (API URL)."""
    account = hashlib.sha256(settings.SPARKBOT_API_URL.encode()).hexdigest()[:16]
    prefix = f"queues:device-list:v3:{account}"
    return CacheKeys(prefix, f"{prefix}:version", f"{prefix}:error", f"{prefix}:lock")


@dataclass(frozen=True)
class DeviceList:
    devices: tuple[Device, ...]
    fetched_at: float
    version: str = field(default_factory=lambda: uuid.uuid4().hex)

    @cached_property
    def by_id(self) -> dict[str, Device]:
        return {device.id: device for device in self.devices}

    @property
    def fetched(self) -> datetime:
        return datetime.fromtimestamp(self.fetched_at, tz=timezone.utc)

    @property
    def is_fresh(self) -> bool:
        return time.time() - self.fetched_at < settings.SPARKBOT_DEVICE_CACHE_SECONDS

    def get(self, device_id: str) -> Device | None:
        return self.by_id.get(device_id)


class DeviceListLoading(SparkBotError):
    """No device list yet, and the walk that reads it did not end within SPARKBOT_DEVICE_WAIT_SECONDS."""

    code, retryable = "device_list_loading", True

    def sentence(self, source, target):
        return self.describe()

    def describe(self):
        return "The device list is still loading from SparkBot; try again in a moment."


class CacheUnavailable(Exception):
    pass


def _cache(operation: str, *args, **kwargs):
    try:
        return getattr(cache, operation)(*args, **kwargs)
    except Exception as error:  # e.g. Redis down: the page must still work
        raise CacheUnavailable(f"{type(error).__name__}: {error}") from error


# Reading the list ------------------------------------------------------------------------


def device_list(*, refresh: bool = False) -> DeviceList:
    """SparkBot's devices, shared through the cache; straight from SparkBot if the cache is down.

    A list, even a stale one, is answered at once (a stale one starts one walk in the
    background). With no list, or on "Refresh devices" (a list completed after the click),
    the request waits at most SPARKBOT_DEVICE_WAIT_SECONDS, then raises DeviceListLoading.
    A failed walk is raised again, without walking, for SPARKBOT_DEVICE_ERROR_CACHE_SECONDS.
    """
    try:
        return _shared_device_list(refresh=refresh)
    except CacheUnavailable as error:
        logger.warning("device cache unavailable (%s); asking SparkBot directly", error)
        return _walk()


def device_list_refresh() -> DeviceList:
    """Walk GET /devices now and store the list (the fleet monitor's Celery task calls this).

    The walk takes the same lock as the pages: if another process is walking, this waits
    for that walk instead of making a second one. Answers a list completed after the call;
    raises the SparkBotError of a failed walk (remembered for SPARKBOT_DEVICE_ERROR_CACHE_SECONDS).
    """
    try:
        return _refresh(newer_than=time.time(), keys=cache_keys())
    except CacheUnavailable as error:
        logger.warning("device cache unavailable (%s); asking SparkBot directly", error)
        return _walk()


def _shared_device_list(*, refresh: bool) -> DeviceList:
    keys = cache_keys()
    newer_than = time.time() if refresh else 0.0
    listed, error = _cached(keys)
    if listed is not None and not refresh:
        if not listed.is_fresh and error is None:
            _refresh_in_background(newer_than=time.time() - settings.SPARKBOT_DEVICE_CACHE_SECONDS)
        return listed
    if error is not None:
        raise _error_from(error)
    deadline = time.monotonic() + settings.SPARKBOT_DEVICE_WAIT_SECONDS
    while (listed := _from_cache(keys, newer_than)) is None:
        _refresh_in_background(newer_than=newer_than)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeviceListLoading()
        with _changed:
            _changed.wait(min(POLL_SECONDS, remaining))
    return listed


# The list this process last read from the cache, by cache key: reading its small version key
# instead of unpickling a thousand devices saves ~2 ms a request (docs/PERFORMANCE.md).
_last_read: dict[str, DeviceList] = {}


def _cached(keys: CacheKeys) -> tuple[DeviceList | None, dict | None]:
    found = _cache("get_many", [keys.version, keys.error])
    version, error = found.get(keys.version), found.get(keys.error)
    if version is None:
        return None, error
    known = _last_read.get(keys.list)
    if known is not None and known.version == version:
        return known, error
    listed = _cache("get", keys.list)
    if listed is not None:
        _last_read[keys.list] = listed
    return listed, error


def _from_cache(keys: CacheKeys, newer_than: float) -> DeviceList | None:
    """The cached list if it was completed after `newer_than`; a remembered failure is raised again."""
    listed, error = _cached(keys)
    if error is not None:
        raise _error_from(error)
    return listed if listed is not None and listed.fetched_at >= newer_than else None


# Walking, one walk at a time -------------------------------------------------------------


def _refresh(*, newer_than: float, keys: CacheKeys) -> DeviceList:
    """A list completed after `newer_than`: from the cache, or walked under the lock, or
    waited for while another walker holds the lock."""
    while (listed := _from_cache(keys, newer_than)) is None:
        lock = walk_lock(keys.lock)
        if lock.acquire():
            try:
                # The walker before us may have finished between our look and our lock.
                return _from_cache(keys, newer_than) or _walk_and_store(keys, lock)
            except WalkLockLost:
                logger.warning("the device list walk outlived its lock; leaving it to the new walker")
            finally:
                lock.release()
        with _changed:
            _changed.wait(POLL_SECONDS)
    return listed


def _walk_and_store(keys: CacheKeys, lock: _WalkLock) -> DeviceList:
    try:
        listed = _walk(after_each_page=lock.extend_or_fail)
    except SparkBotError as error:
        _remember_error(keys, error)
        raise
    except WalkLockLost:
        raise
    except Exception as error:  # a defect, not SparkBot: still one answer for every waiter
        logger.exception("walking the device list failed")
        _remember_error(keys, SparkBotError(f"{type(error).__name__} while reading the device list"))
        raise
    _cache("set_many", {keys.list: listed, keys.version: listed.version}, timeout=KEEP_SECONDS)
    with _changed:
        _changed.notify_all()
    return listed


def _remember_error(keys: CacheKeys, error: SparkBotError) -> None:
    """Keep what a user needs to read the error again: its class and SparkBot's (redacted) answer."""
    record = {"kind": type(error).__name__, "detail": str(error.detail)[:300], "status_code": error.status_code,
              "api_code": error.api_code}
    _cache("set", keys.error, record, timeout=settings.SPARKBOT_DEVICE_ERROR_CACHE_SECONDS)
    with _changed:
        _changed.notify_all()


def _error_from(record: dict) -> SparkBotError:
    kind = getattr(sparkbot, record["kind"], None)
    if not (isinstance(kind, type) and issubclass(kind, SparkBotError)):
        kind = SparkBotError
    return kind(record["detail"], status_code=record["status_code"], api_code=record["api_code"])


def _walk(*, after_each_page=None) -> DeviceList:
    client, found = sparkbot.client(), []
    for page in range(sparkbot.MAX_PAGES):
        batch = client.devices_page(page=page, size=sparkbot.PAGE_SIZE)
        found.extend(batch)
        if len(batch) < sparkbot.PAGE_SIZE:
            return DeviceList(devices=tuple(found), fetched_at=time.time())
        if after_each_page:
            after_each_page()
    raise sparkbot.UnexpectedReply(f"GET /devices kept returning full pages after {sparkbot.MAX_PAGES} pages")


# The background walk of this process -----------------------------------------------------

_changed = threading.Condition()  # guards the two below; notified when a walk stores a list or an error
_refresher: threading.Thread | None = None
_wanted_after = 0.0


def _refresh_in_background(*, newer_than: float) -> None:
    """Make sure this process's refresher runs until the cache holds a list completed after `newer_than`."""
    global _refresher, _wanted_after
    with _changed:
        _wanted_after = max(_wanted_after, newer_than)
        if _refresher is None:
            _refresher = threading.Thread(target=_refresher_run, args=(cache_keys(),), name="device-list-refresh",
                                          daemon=True)
            _refresher.start()


def _refresher_run(keys: CacheKeys) -> None:
    global _refresher, _wanted_after
    while True:
        with _changed:
            wanted = _wanted_after
        stop = True
        try:
            _refresh(newer_than=wanted, keys=keys)
            stop = False
        except SparkBotError:
            pass  # remembered in the cache: the waiters read it there
        except CacheUnavailable as error:
            logger.warning("device cache unavailable (%s); the device list was not refreshed", error)
        except Exception:
            logger.exception("refreshing the device list failed")
        with _changed:
            if stop or _wanted_after <= wanted:
                _refresher, _wanted_after = None, 0.0
                _changed.notify_all()
                return


def _forget_refresher_in_child() -> None:
    global _changed, _refresher, _wanted_after
    _changed, _refresher, _wanted_after = threading.Condition(), None, 0.0
    _ProcessLock.holders.clear()
    _ProcessLock._guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_refresher_in_child)  # the thread does not survive a fork


# The walk lock -----------------------------------------------------------------------------


class WalkLockLost(Exception):
    """The lock expired during a walk and another walker may hold it now."""


def walk_lock(key: str | None = None, *, lifetime: float | None = None) -> _WalkLock:
    """The lock one walker holds while walking GET /devices, with an owner token: only its owner
    extends or releases it. It lives a few page timeouts and its walker extends it after every
    page, so a walk of any length keeps it and a walker that died frees it soon."""
    key = key or cache_keys().lock
    lifetime = lifetime or 3 * settings.SPARKBOT_TIMEOUT + 2
    if hasattr(cache, "lock"):  # django-redis: shared by every process
        return _RedisLock(key, lifetime)
    return _ProcessLock(key, lifetime)  # a local-memory cache is this process's alone, and so is its lock


class _WalkLock:
    lifetime: float

    def acquire(self) -> bool:
        raise NotImplementedError

    def extend(self) -> bool:
        """Another `lifetime` from now; False if the lock is no longer this owner's."""
        raise NotImplementedError

    def release(self) -> None:
        """Free the lock if it is still this owner's; never another walker's."""
        raise NotImplementedError

    def extend_or_fail(self) -> None:
        if not self.extend():
            raise WalkLockLost()


class _RedisLock(_WalkLock):
    def __init__(self, key: str, lifetime: float):
        self.lifetime = lifetime
        self._lock = _cache("lock", key, timeout=lifetime, blocking=False, thread_local=False)

    def acquire(self) -> bool:
        return bool(self._call(self._lock.acquire, blocking=False))

    def extend(self) -> bool:
        try:
            return bool(self._call(self._lock.extend, self.lifetime, replace_ttl=True))
        except LockError:
            return False

    def release(self) -> None:
        try:
            self._call(self._lock.release)
        except LockError:
            logger.warning("the device list lock had passed to another walker; left to it")

    @staticmethod
    def _call(operation, *args, **kwargs):
        try:
            return operation(*args, **kwargs)
        except LockError:
            raise
        except Exception as error:
            raise CacheUnavailable(f"{type(error).__name__}: {error}") from error


class _ProcessLock(_WalkLock):
    """The same owner-token lock, in this process's memory."""

    holders: dict[str, tuple[str, float]] = {}  # key -> (owner token, monotonic expiry)
    _guard = threading.Lock()

    def __init__(self, key: str, lifetime: float):
        self.key, self.lifetime, self.token = key, lifetime, uuid.uuid4().hex

    def acquire(self) -> bool:
        with self._guard:
            holder = self.holders.get(self.key)
            if holder is not None and holder[1] > time.monotonic():
                return False
            self.holders[self.key] = (self.token, time.monotonic() + self.lifetime)
            return True

    def extend(self) -> bool:
        with self._guard:
            if not self._owned():
                return False
            self.holders[self.key] = (self.token, time.monotonic() + self.lifetime)
            return True

    def release(self) -> None:
        with self._guard:
            if self._owned():
                del self.holders[self.key]
            else:
                logger.warning("the device list lock had passed to another walker; left to it")

    def _owned(self) -> bool:
        holder = self.holders.get(self.key)
        return holder is not None and holder[0] == self.token and holder[1] > time.monotonic()


def device_list_forget() -> None:
    """Drop the list and any remembered failure (after this process's walk, if one is running)."""
    with _changed:
        running = _refresher
    if running is not None:
        running.join(30)
    keys = cache_keys()
    cache.delete_many([keys.list, keys.version, keys.error])


def queue_stats(*, device_id: str) -> QueueStats:
    stats, _reply = sparkbot.client().queue_stats(device_id)
    return stats
