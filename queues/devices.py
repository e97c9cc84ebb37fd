"""Reads from SparkBot: the shared, cached device list, and a device's queue stats."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import datetime, timezone
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings
from django.core.cache import cache
from django.template.loader import render_to_string

from . import sparkbot
from .sparkbot import Device, QueueStats

logger = logging.getLogger(__name__)


def _keys() -> tuple[str, str]:
    """Cache keys of the device list and its lock, per SparkBot account (API URL)."""
    account = hashlib.sha256(settings.SPARKBOT_API_URL.encode()).hexdigest()[:16]
    return f"queues:device-list:v1:{account}", f"queues:device-list:lock:{account}"
_options_html: dict[str, str] = {}


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

    def get(self, device_id: str) -> Device | None:
        return self.by_id.get(device_id)

    def options_html(self) -> str:
        """The <option> list, rendered once per list version: the page's biggest cost."""
        html = _options_html.get(self.version)
        if html is None:
            html = render_to_string("queues/_device_options.html", {"devices": self.devices})
            _options_html.clear()
            _options_html[self.version] = html
        return html


class CacheUnavailable(Exception):
    pass


def _cache(operation: str, *args, **kwargs):
    try:
        return getattr(cache, operation)(*args, **kwargs)
    except Exception as error:  # e.g. Redis down: the page must still work
        raise CacheUnavailable(f"{type(error).__name__}: {error}") from error


def device_list(*, refresh: bool = False) -> DeviceList:
    """SparkBot's devices, shared through the cache; straight from SparkBot if the cache is down."""
    try:
        return _shared_device_list(refresh=refresh)
    except CacheUnavailable as error:
        logger.warning("device cache unavailable (%s); asking SparkBot directly", error)
        return _walk()


def _shared_device_list(*, refresh: bool) -> DeviceList:
    """The device list, shared by every user for SPARKBOT_DEVICE_CACHE_SECONDS.

    A cold cache makes one walk of GET /devices whatever the number of concurrent
    callers, in one process or many: the walker holds a lock in the shared cache and
    the others wait for its answer. A refresh accepts only a list completed after it
    was asked for, so concurrent refreshes share one walk too.
    """
    cache_key, lock_key = _keys()
    newer_than = time.time() if refresh else 0.0
    deadline = time.monotonic() + settings.SPARKBOT_TIMEOUT * 3 + 5
    while True:
        cached = _cache("get", cache_key)
        if cached is not None and cached.fetched_at >= newer_than:
            return cached
        if _cache("add", lock_key, "1", timeout=int(settings.SPARKBOT_TIMEOUT * 3) + 5):
            try:
                return _walk_unless_cached(cache_key, newer_than)
            finally:
                _cache("delete", lock_key)
        if time.monotonic() > deadline:
            return _walk_unless_cached(cache_key, newer_than)
        time.sleep(0.02)


def _walk_unless_cached(cache_key: str, newer_than: float) -> DeviceList:
    cached = _cache("get", cache_key)
    if cached is not None and cached.fetched_at >= newer_than:
        return cached
    fresh = _walk()
    _cache("set", cache_key, fresh, timeout=settings.SPARKBOT_DEVICE_CACHE_SECONDS)
    return fresh


def _walk() -> DeviceList:
    return DeviceList(devices=tuple(sparkbot.client().devices_all()), fetched_at=time.time())


def device_list_forget() -> None:
    cache.delete(_keys()[0])


def queue_stats(*, device_id: str) -> QueueStats:
    stats, _reply = sparkbot.client().queue_stats(device_id)
    return stats
