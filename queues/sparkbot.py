"""The only module that speaks HTTP to SparkBot: typed results, typed errors.

Contract: ../shared/SPARKBOT_API.md. Every error is a `SparkBotError` subclass that knows
whether it may be retried and what a support lead should read.
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as DeadlinePassed
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)
DEVICE_ID = re.compile(r"^[0-9a-f]{24}$")
SECRET_FIELDS = {"token", "apikey", "api_key", "authorization", "password", "secret", "key"}
REMOVED = "[removed]"
USABLE_STATUSES = frozenset({"operative", "ready"})
PAGE_SIZE = 100
MAX_PAGES = 1000  # a guard against an API that never returns a short page


@dataclass(frozen=True)
class Device:
    id: str
    alias: str
    phone: str
    status: str
    session_status: str

    @property
    def is_usable(self) -> bool:
        return self.status in USABLE_STATUSES

    @property
    def can_deliver(self) -> bool:
        return self.is_usable and self.session_status == "online"

    @property
    def label(self) -> str:
        return f"{self.alias} ({self.phone})" if self.phone else self.alias

    @classmethod
    def from_api(cls, data: dict) -> Device:
        if not isinstance(data, dict) or not DEVICE_ID.match(str(data.get("id", ""))):
            raise UnexpectedReply(f"a device without a valid id: {str(data)[:200]}")
        session = data.get("session") if isinstance(data.get("session"), dict) else {}
        return cls(
            id=data["id"],
            alias=str(data.get("alias") or data["id"]),
            phone=str(data.get("phone") or ""),
            status=str(data.get("status") or "unknown"),
            session_status=str(session.get("status") or "unknown"),
        )


def _count(data: dict, key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None  # missing or odd: unknown, not zero
    return value


@dataclass(frozen=True)
class QueueStats:
    status: str | None
    total: int | None
    pending: int | None
    processing: int | None
    scheduled: int | None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_api(cls, data: Any) -> QueueStats:
        if not isinstance(data, dict):
            raise UnexpectedReply(f"queue stats that are not an object: {str(data)[:200]}")
        return cls(
            status=data.get("status") if isinstance(data.get("status"), str) else None,
            total=_count(data, "total"),
            pending=_count(data, "pending"),
            processing=_count(data, "processing"),
            scheduled=_count(data, "scheduled"),
            raw=data,
        )


@dataclass(frozen=True)
class Reply:
    """A successful answer: its JSON (None when the body was empty or, where tolerated, not JSON).

    `text` keeps the start of a body that was not JSON, for the audit record.
    """

    data: Any
    status_code: int
    text: str = ""

    @property
    def for_audit(self) -> Any:
        return {"not_json": self.text} if self.text else self.data


def redact(data: Any, secret: str) -> Any:
    """A copy of an API answer without the key and without any secret-looking field."""
    if isinstance(data, dict):
        return {k: REMOVED if str(k).lower() in SECRET_FIELDS else redact(v, secret) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(item, secret) for item in data]
    if isinstance(data, str) and secret and secret in data:
        return data.replace(secret, REMOVED)
    return data


# Errors ---------------------------------------------------------------------------------


class SparkBotError(Exception):
    code = "sparkbot_error"
    retryable = False
    status_code: int | None = None

    def __init__(self, detail: str = "", *, status_code: int | None = None, api_code: str = ""):
        super().__init__(detail or self.code)
        self.detail = detail
        self.api_code = api_code
        if status_code is not None:
            self.status_code = status_code

    def sentence(self, source: str, target: str) -> str:
        """What went wrong with routing `source` to `target`, for a support lead."""
        return f"SparkBot answered unexpectedly ({self.status_code or 'no status'}): {self.detail or self.code}."

    def describe(self) -> str:
        """What went wrong, with no reroute in context (e.g. loading the device list)."""
        return f"SparkBot answered {self.status_code or 'unexpectedly'}: {self.detail or self.code}."


class BadRequest(SparkBotError):
    code, status_code = "bad_request", 400

    def sentence(self, source, target):
        return f"SparkBot refused the request as invalid (400): {self.detail or 'no reason given'}."


class AuthenticationFailed(SparkBotError):
    code, status_code = "unauthorized", 401

    def sentence(self, source, target):
        return "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY."

    def describe(self):
        return self.sentence("", "")


class PermissionDenied(SparkBotError):
    code, status_code = "forbidden", 403

    def sentence(self, source, target):
        return (
            f"SparkBot answered 403: this API key may not route the queue of {source}. "
            "An admin must grant the key access to this number."
        )


class DeviceNotFound(SparkBotError):
    code, status_code = "device_not_found", 404

    def __init__(self, *args, device_id: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.device_id = device_id

    def sentence(self, source, target):
        return f"{source} is no longer a SparkBot device; refresh the device list."


class Refused(SparkBotError):
    code, status_code = "refused", 409

    def sentence(self, source, target):
        reason = self.detail or "it refuses in the current state"
        return f"SparkBot refused to route {source} to {target} ({self.status_code}): {reason}."


class RateLimited(SparkBotError):
    code, status_code, retryable = "rate_limited", 429, True

    def __init__(self, *args, retry_after: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after

    def sentence(self, source, target):
        return "SparkBot is rate limiting this API key (429)."


class Unavailable(SparkBotError):
    code, retryable = "unavailable", True

    def sentence(self, source, target):
        return f"SparkBot did not answer ({self.status_code or self.detail})."

    def describe(self):
        return self.sentence("", "")


class Timeout(Unavailable):
    code = "timeout"

    def sentence(self, source, target):
        return f"SparkBot did not answer within {settings.SPARKBOT_TIMEOUT:g} seconds."


class ConnectionFailed(Unavailable):
    code = "connection_failed"

    def sentence(self, source, target):
        return "SparkBot could not be reached (connection failed)."


class UnexpectedReply(SparkBotError):
    code = "unexpected_reply"


_BY_STATUS = {400: BadRequest, 401: AuthenticationFailed, 403: PermissionDenied, 404: DeviceNotFound,
              409: Refused, 422: Refused, 429: RateLimited}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_body(response: httpx.Response) -> tuple[str, str]:
    """(message, errorCode) from an error body that may be JSON, empty, HTML or text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if not text:
            return "", ""
        if text.lstrip().startswith("<"):
            return f"an HTML page instead of JSON (a proxy answered?), {len(text)} characters", ""
        return text[:300], ""
    if isinstance(body, dict):
        return str(body.get("message") or "")[:300], str(body.get("errorCode") or "")[:100]
    return str(body)[:300], ""


def error_for(response: httpx.Response, *, device_id: str = "") -> SparkBotError:
    message, api_code = _error_body(response)
    status = response.status_code
    if status == 429:
        return RateLimited(message, api_code=api_code,
                           retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if status == 404:
        return DeviceNotFound(message, status_code=status, api_code=api_code, device_id=device_id)
    if status in _BY_STATUS:
        return _BY_STATUS[status](message, status_code=status, api_code=api_code)
    if status >= 500:
        return Unavailable(message or f"HTTP {status}", status_code=status, api_code=api_code)
    return UnexpectedReply(message or f"HTTP {status}", status_code=status, api_code=api_code)


# The client -----------------------------------------------------------------------------


class SparkBotClient:
    """Answers and errors leave this class with the API key and secret-looking fields removed.

    `timeout` bounds a whole call, not only each phase of it (httpx's own timeouts are per
    phase: a slow trickle of bytes could otherwise hold a call for many times `timeout`).
    A call past its deadline raises Timeout at once; its request is abandoned and ends on
    its own phase timeouts. What SparkBot did with it is unknown, exactly as with any timeout.
    """

    def __init__(self, *, base_url: str, api_key: str, timeout: float, transport=None):
        self._api_key = api_key
        self._deadline = timeout
        self._calls = ThreadPoolExecutor(max_workers=32, thread_name_prefix="sparkbot-call")
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"Token": api_key, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            transport=transport,
        )

    def close(self) -> None:
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def _call(self, method: str, path: str, *, device_id: str = "", body_may_be_text: bool = False,
              **kwargs) -> Reply:
        started = time.perf_counter()
        try:
            call = self._calls.submit(self._http.request, method, path.lstrip("/"), **kwargs)
            response = call.result(timeout=self._deadline)
        except (httpx.TimeoutException, DeadlinePassed) as error:
            self._log(method, path, "timeout", started)
            raise Timeout(type(error).__name__) from None
        except httpx.TransportError as error:
            self._log(method, path, type(error).__name__, started)
            raise ConnectionFailed(type(error).__name__) from None
        self._log(method, path, response.status_code, started)
        if response.status_code >= 300:
            error = error_for(response, device_id=device_id)
            error.detail = redact(error.detail, self._api_key)
            error.args = (error.detail or error.code,)
            raise error
        if body_may_be_text and not _is_json(response):
            return Reply(data=None, status_code=response.status_code,
                         text=redact(response.text[:2000], self._api_key))
        return Reply(data=redact(_json_or_none(response), self._api_key), status_code=response.status_code)

    def _log(self, method: str, path: str, outcome, started: float) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            headers = {name: REMOVED if name.lower() in ("token", "authorization") else value
                       for name, value in self._http.headers.items()}
            logger.debug("SparkBot %s /%s -> %s in %.1f ms, headers %s", method, path.lstrip("/"), outcome,
                         (time.perf_counter() - started) * 1000, headers)

    def devices_page(self, *, page: int, size: int = PAGE_SIZE) -> list[Device]:
        reply = self._call("GET", "devices", params={"page": page, "size": size})
        if not isinstance(reply.data, list):
            raise UnexpectedReply(f"GET /devices did not return a list: {str(reply.data)[:200]}")
        return [Device.from_api(item) for item in reply.data]

    def devices_all(self, *, size: int = PAGE_SIZE) -> list[Device]:
        devices: list[Device] = []
        for page in range(MAX_PAGES):
            batch = self.devices_page(page=page, size=size)
            devices.extend(batch)
            if len(batch) < size:
                return devices
        raise UnexpectedReply(f"GET /devices kept returning full pages after {MAX_PAGES} pages")

    def device(self, device_id: str) -> Device:
        reply = self._call("GET", f"devices/{_checked(device_id)}", device_id=device_id)
        return Device.from_api(reply.data)

    def queue_stats(self, device_id: str) -> tuple[QueueStats, Reply]:
        reply = self._call("GET", f"devices/{_checked(device_id)}/queue", device_id=device_id)
        return QueueStats.from_api(reply.data), reply

    def queue_set_status(self, device_id: str, status: str) -> QueueStats:
        """Set Queue Status: active, pause, reject or freeze."""
        reply = self._call("POST", f"devices/{_checked(device_id)}/queue", json={"status": status},
                           device_id=device_id)
        return QueueStats.from_api(reply.data)

    def route_queue(self, source_id: str, target_id: str) -> Reply:
        """Any 2xx means SparkBot took the route; its reply's shape is not published, so any body is kept."""
        return self._call(
            "PATCH", f"devices/{_checked(source_id)}/queue",
            json={"device": _checked(target_id)}, device_id=source_id, body_may_be_text=True,
        )


def _checked(device_id: str) -> str:
    if not DEVICE_ID.match(device_id or ""):
        raise BadRequest(f"{device_id!r} is not a SparkBot device id")
    return device_id


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return not response.content.strip()
    return True


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        raise UnexpectedReply(
            f"HTTP {response.status_code} with a body that is not JSON ({len(response.content)} bytes)",
            status_code=response.status_code,
        ) from None


_client: SparkBotClient | None = None
_client_lock = threading.Lock()


def client() -> SparkBotClient:
    """The process's shared client (one connection pool), built from settings."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = SparkBotClient(
                    base_url=settings.SPARKBOT_API_URL,
                    api_key=settings.SPARKBOT_API_KEY,
                    timeout=settings.SPARKBOT_TIMEOUT,
                )
    return _client


def client_reset(*, close: bool = True) -> None:
    """Forget the shared client (tests that change settings; forked workers, which must not
    touch the parent's connections and threads: close=False)."""
    global _client, _client_lock
    if not close:
        _client, _client_lock = None, threading.Lock()
        return
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None
