"""In-memory state of the SparkBot sandbox.

One `threading.Lock` guards everything in `SandboxState`; every public method
takes it, so the threaded HTTP server can call them concurrently. Request-body
parsers live here too: they raise `ApiError`, which the server renders as the
API's error JSON `{"status", "message", "errorCode"}`.
"""

import copy
import hmac
import random
import re
import threading
import time

from .seed import initial_state

DEFAULT_API_KEY = "sandbox-key-0123456789abcdefghijklmnop"

QUEUE_STATUSES = ("active", "pause", "reject", "freeze")
FORCE_STATUSES = ("active", "reject")
OPERATIVE_STATUSES = ("operative", "ready")
QUEUE_COUNTS = ("pending", "processing", "scheduled")
ROUTE_NAMES = (
    "devices_list", "device_get", "queue_get", "queue_set", "route_queue", "queue_empty",
)
FAULT_FIELDS = (
    "method", "route", "status", "times", "retry_after", "body", "hang_seconds", "device",
)
_ID_RE = re.compile(r"[0-9a-f]{24}")
# Chaos: a random share of /v1 calls fails in one of these ways (see `parse_chaos`).
CHAOS_KINDS = ("server_error", "bad_gateway", "rate_limited", "hang", "lost_answer", "slow_answer")
CHAOS_FIELDS = ("rate", "seed", "kinds", "hang_seconds", "retry_after", "routes", "slow_seconds")
READ_ROUTES = ("devices_list", "device_get", "queue_get")


class ApiError(Exception):
    """An error reply: HTTP status, human message and machine errorCode."""

    def __init__(self, status, message, error_code):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code

    def payload(self):
        return {"status": self.status, "message": self.message, "errorCode": self.error_code}


def bad_request(message, error_code="invalid_body"):
    return ApiError(400, message, error_code)


# --- validation helpers -------------------------------------------------------

def is_device_id(value):
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def check_device_id(value, role="device"):
    if not is_device_id(value):
        raise bad_request(f"Invalid {role} id: expected 24 lowercase hex characters",
                          "invalid_device_id")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_object(body, what):
    if not isinstance(body, dict):
        raise bad_request(f"Request body must be a JSON object with the {what}")


def auth_status(headers, api_key):
    """"ok", "missing" or "bad" for a request's `Token` / `Authorization: Bearer` header."""
    token = (headers.get("Token") or "").strip()
    if not token:
        authorization = (headers.get("Authorization") or "").strip()
        if not authorization:
            return "missing"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return "bad"
        token = token.strip()
    matches = hmac.compare_digest(token.encode("utf-8"), api_key.encode("utf-8"))
    return "ok" if matches else "bad"


def parse_queue_status_body(body):
    """(status, force) from a `POST /devices/{id}/queue` body."""
    _require_object(body, "queue status")
    status, force = body.get("status"), body.get("force", False)
    if status not in QUEUE_STATUSES:
        raise bad_request(f"status must be one of: {', '.join(QUEUE_STATUSES)}")
    if not isinstance(force, bool):
        raise bad_request("force must be a boolean")
    if force and status not in FORCE_STATUSES:
        raise bad_request("force is only allowed with status active or reject")
    return status, force


def parse_route_body(body):
    """The target device id from a `PATCH /devices/{id}/queue` body."""
    _require_object(body, "target device")
    if "device" not in body:
        raise bad_request("Missing target device id in field 'device'")
    check_device_id(body["device"], role="target device")
    return body["device"]


def parse_counts(body):
    """Queue counts (and optional queue status) for `POST /_sandbox/queues/{id}`."""
    _require_object(body, "queue counts")
    unknown = set(body) - set(QUEUE_COUNTS) - {"status"}
    if unknown or not body:
        raise bad_request(f"Expected some of: {', '.join(QUEUE_COUNTS)}, status")
    for name in QUEUE_COUNTS:
        if name in body and not (_is_int(body[name]) and body[name] >= 0):
            raise bad_request(f"{name} must be a non-negative integer")
    if "status" in body and body["status"] not in QUEUE_STATUSES:
        raise bad_request(f"status must be one of: {', '.join(QUEUE_STATUSES)}")
    return dict(body)


def parse_latency(body):
    _require_object(body, "latency")
    ms = body.get("ms")
    if not (_is_number(ms) and ms >= 0):
        raise bad_request("ms must be a non-negative number")
    return float(ms)


def parse_fault(body):
    """A normalised fault from a `POST /_sandbox/faults` body."""
    _require_object(body, "fault")
    unknown = sorted(set(body) - set(FAULT_FIELDS))
    if unknown:
        raise bad_request(f"Unknown fault fields: {', '.join(unknown)}")
    fault = {
        "method": _optional_str(body, "method"),
        "route": body.get("route", "*"),
        "status": body.get("status"),
        "times": body.get("times", 1),
        "retry_after": _retry_after(body.get("retry_after")),
        "body": _optional_str(body, "body"),
        "hang_seconds": body.get("hang_seconds", 0),
        "device": _optional_str(body, "device"),
    }
    _check_fault(fault)
    if fault["method"]:
        fault["method"] = fault["method"].upper()
    return fault


def _optional_str(body, name):
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value


def _retry_after(value):
    if value is None or isinstance(value, str):
        return value
    if _is_number(value):
        return str(value)
    raise bad_request("retry_after must be a string or a number")


def _check_fault(fault):
    if fault["route"] != "*" and fault["route"] not in ROUTE_NAMES:
        raise bad_request(f"route must be '*' or one of: {', '.join(ROUTE_NAMES)}")
    status = fault["status"]
    if status is not None and not (_is_int(status) and 100 <= status <= 599):
        raise bad_request("status must be an HTTP status code (100-599)")
    if not (_is_int(fault["times"]) and fault["times"] >= 1):
        raise bad_request("times must be a positive integer")
    hang = fault["hang_seconds"]
    if not (_is_number(hang) and hang >= 0):
        raise bad_request("hang_seconds must be a non-negative number")
    if status is None and not hang:
        raise bad_request("A fault needs a status, a hang_seconds, or both")


def parse_chaos(body):
    """Normalised chaos settings from a `POST /_sandbox/chaos` body.

    rate: share of calls that fail (0..1); seed: of the random choices; kinds: among
    CHAOS_KINDS (default all), picked evenly (list a kind twice to pick it twice as often);
    hang_seconds: how long a hang lasts (make it longer than the client's timeout);
    retry_after: whole seconds sent with a 429; slow_seconds: how long a slow answer takes
    to arrive, a few bytes at a time; routes: the route names chaos applies to (default
    all). `lost_answer` applies to route calls only.
    """
    _require_object(body, "chaos settings")
    unknown = sorted(set(body) - set(CHAOS_FIELDS))
    if unknown:
        raise bad_request(f"Unknown chaos fields: {', '.join(unknown)}")
    chaos = {
        "rate": body.get("rate"),
        "seed": body.get("seed", 0),
        "kinds": body.get("kinds", list(CHAOS_KINDS)),
        "hang_seconds": body.get("hang_seconds", 2),
        "retry_after": body.get("retry_after", 1),
        "routes": body.get("routes", list(ROUTE_NAMES)),
        "slow_seconds": body.get("slow_seconds", 12),
    }
    if not (_is_number(chaos["rate"]) and 0 <= chaos["rate"] <= 1):
        raise bad_request("rate must be a number from 0 to 1")
    if not _is_int(chaos["seed"]):
        raise bad_request("seed must be an integer")
    _check_names(chaos["kinds"], CHAOS_KINDS, "kinds")
    _check_names(chaos["routes"], ROUTE_NAMES, "routes")
    if not (_is_number(chaos["hang_seconds"]) and chaos["hang_seconds"] > 0):
        raise bad_request("hang_seconds must be a positive number")
    if not (_is_int(chaos["retry_after"]) and chaos["retry_after"] >= 0):
        raise bad_request("retry_after must be a whole number of seconds")
    if not (_is_number(chaos["slow_seconds"]) and chaos["slow_seconds"] > 0):
        raise bad_request("slow_seconds must be a positive number")
    return chaos


def _check_names(names, allowed, field_name):
    valid = isinstance(names, list) and names and all(name in allowed for name in names)
    if not valid:
        raise bad_request(f"{field_name} must be a non-empty list of: {', '.join(allowed)}")


def _check_device_fields(body):
    _require_object(body, "device fields")
    allowed = {"alias", "status", "sessionStatus"}
    valid = body and set(body) <= allowed and all(isinstance(v, str) for v in body.values())
    if not valid:
        raise bad_request("Expected string fields among: alias, status, sessionStatus")


def _fault_matches(fault, method, route, device):
    return (
        fault["method"] in (None, method)
        and fault["route"] in ("*", route)
        and fault["device"] in (None, device)
    )


def _device_matches(device, search, status, session_status):
    if status and device.get("status") != status:
        return False
    if session_status and (device.get("session") or {}).get("status") != session_status:
        return False
    if search:
        needle = search.casefold()
        haystack = f"{device.get('alias', '')}\n{device.get('phone', '')}".casefold()
        return needle in haystack
    return True


# --- the state ----------------------------------------------------------------

class SandboxState:
    """Devices, queues, recorded calls, faults and latency of one sandbox."""

    def __init__(self, api_key=DEFAULT_API_KEY, extra_devices=0, latency_ms=0.0):
        self.api_key = api_key
        self.extra_devices = extra_devices
        self._lock = threading.Lock()
        self._load_seed()
        self._latency_ms = float(latency_ms)

    def _load_seed(self):
        devices, queues = initial_state(self.extra_devices)
        self._devices = {device["id"]: device for device in devices}  # keeps seed order
        zero = {name: 0 for name in QUEUE_COUNTS}
        self._queues = {
            dev_id: {"status": "active", **queues.get(dev_id, zero)} for dev_id in self._devices
        }
        self._calls = []
        self._faults = []
        self._latency_ms = 0.0
        self._chaos = None
        self._chaos_random = random.Random(0)
        self._chaos_injected = {kind: 0 for kind in CHAOS_KINDS}
        self._chaos_by_route = {}
        self._chaos_calls = 0
        self._routes = []

    def reset(self):
        """Back to the seed (same api key and extra devices); clears calls, faults, latency,
        chaos, its counts and the route ledger."""
        with self._lock:
            self._load_seed()

    # devices and queues (the /v1 API)

    def list_devices(self, page, size, search=None, status=None, session_status=None):
        with self._lock:
            found = [d for d in self._devices.values()
                     if _device_matches(d, search, status, session_status)]
            return copy.deepcopy(found[page * size:(page + 1) * size])

    def get_device(self, dev_id):
        with self._lock:
            return copy.deepcopy(self._require(dev_id))

    def queue_stats(self, dev_id):
        with self._lock:
            self._require(dev_id)
            return self._stats(dev_id)

    def set_queue_status(self, dev_id, body):
        with self._lock:
            self._require(dev_id)
            status, _force = parse_queue_status_body(body)
            self._queues[dev_id]["status"] = status
            return self._stats(dev_id)

    def empty_queue(self, dev_id):
        with self._lock:
            self._require(dev_id)
            self._queues[dev_id].update({name: 0 for name in QUEUE_COUNTS})
            return self._stats(dev_id)

    def route_queue(self, source_id, body, answer_lost=False):
        """Move every queued message to the target; None when the source queue was empty.

        Every route carried out goes into the ledger (see `routes`), `answer_lost` telling
        that the server will not deliver its answer (chaos).
        """
        with self._lock:
            self._require(source_id)
            target_id = parse_route_body(body)
            self._require_target(source_id, target_id)
            moved = self._move_messages(source_id, target_id)
            self._routes.append({"source": source_id, "target": target_id, "moved": moved,
                                 "at": time.time(), "answer_lost": answer_lost})
            if not moved:
                return None
            return {"success": True, "source": source_id, "target": target_id,
                    "moved": moved, "queue": self._stats(source_id)}

    def _require(self, dev_id):
        check_device_id(dev_id)
        device = self._devices.get(dev_id)
        if device is None:
            raise ApiError(404, "Device not found", "device_not_found")
        return device

    def _require_target(self, source_id, target_id):
        target = self._devices.get(target_id)
        if target is None:
            raise ApiError(404, "Target device not found", "target_not_found")
        if target_id == source_id:
            raise bad_request("Source and target device must be different", "same_device")
        if target.get("status") not in OPERATIVE_STATUSES:
            raise ApiError(409, "Target device is not operative", "device_not_operative")

    def _move_messages(self, source_id, target_id):
        source, target = self._queues[source_id], self._queues[target_id]
        moved = 0
        for name in QUEUE_COUNTS:
            moved += source[name]
            target[name] += source[name]
            source[name] = 0
        return moved

    def _stats(self, dev_id):
        queue = self._queues[dev_id]
        counts = {name: queue[name] for name in QUEUE_COUNTS}
        return {"status": queue["status"], "total": sum(counts.values()), **counts}

    # control API

    def set_queue_counts(self, dev_id, body):
        with self._lock:
            self._require(dev_id)
            self._queues[dev_id].update(parse_counts(body))
            return self._stats(dev_id)

    def update_device(self, dev_id, body):
        """Change a device's `status`, `sessionStatus` and/or `alias`."""
        with self._lock:
            device = self._require(dev_id)
            _check_device_fields(body)
            device.update({k: v for k, v in body.items() if k != "sessionStatus"})
            if "sessionStatus" in body:
                device.setdefault("session", {})["status"] = body["sessionStatus"]
            return copy.deepcopy(device)

    def remove_device(self, dev_id):
        with self._lock:
            self._require(dev_id)
            del self._devices[dev_id]
            del self._queues[dev_id]

    def snapshot(self):
        with self._lock:
            devices = [{**copy.deepcopy(d), "queue": self._stats(d["id"])}
                       for d in self._devices.values()]
            return {"devices": devices, "faults": copy.deepcopy(self._faults),
                    "latencyMs": self._latency_ms, "extraDevices": self.extra_devices,
                    "calls": len(self._calls)}

    # latency, calls and faults

    @property
    def latency_ms(self):
        with self._lock:
            return self._latency_ms

    def set_latency(self, ms):
        with self._lock:
            self._latency_ms = float(ms)

    def record_call(self, call):
        with self._lock:
            self._calls.append(call)

    def calls(self):
        with self._lock:
            return copy.deepcopy(self._calls)

    def clear_calls(self):
        with self._lock:
            self._calls.clear()

    def add_fault(self, fault):
        with self._lock:
            self._faults.append(dict(fault))

    def faults(self):
        with self._lock:
            return copy.deepcopy(self._faults)

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def take_fault(self, method, route, device):
        """The first fault matching this call (one use of it), or None."""
        with self._lock:
            for fault in self._faults:
                if _fault_matches(fault, method, route, device):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self._faults.remove(fault)
                    return dict(fault)
            return None

    # chaos and the route ledger

    def start_chaos(self, chaos):
        """Fail a random share of calls from now on (settings from `parse_chaos`); counts go on."""
        with self._lock:
            self._chaos = copy.deepcopy(chaos)
            self._chaos_random = random.Random(chaos["seed"])

    def stop_chaos(self):
        with self._lock:
            self._chaos = None

    def chaos_report(self):
        """Chaos settings (None when off), faults injected by kind (and by route, then kind), and
        the calls chaos looked at."""
        with self._lock:
            return {"active": self._chaos is not None, "settings": copy.deepcopy(self._chaos),
                    "injected": dict(self._chaos_injected), "total": sum(self._chaos_injected.values()),
                    "by_route": copy.deepcopy(self._chaos_by_route), "calls": self._chaos_calls}

    def take_chaos(self, route):
        """The fault chaos picks for a call of this route, or None.

        A fault is {"kind", "hang_seconds", "retry_after", "slow_seconds", "late"}; `late` is a coin toss
        for the kinds that end either way (a hang that answers late or closes; a lost answer
        dropped at once or after a hang).
        """
        with self._lock:
            chaos = self._chaos
            if chaos is None or route not in chaos["routes"]:
                return None
            self._chaos_calls += 1
            kinds = [kind for kind in chaos["kinds"] if kind != "lost_answer" or route == "route_queue"]
            if not kinds or self._chaos_random.random() >= chaos["rate"]:
                return None
            kind = self._chaos_random.choice(kinds)
            self._chaos_injected[kind] += 1
            by_kind = self._chaos_by_route.setdefault(route, {})
            by_kind[kind] = by_kind.get(kind, 0) + 1
            return {"kind": kind, "hang_seconds": chaos["hang_seconds"], "retry_after": chaos["retry_after"],
                    "slow_seconds": chaos["slow_seconds"], "late": self._chaos_random.random() < 0.5}

    def routes(self, source=None):
        """The ledger of routes carried out: source, target, moved, at (epoch seconds), answer_lost."""
        with self._lock:
            return [dict(entry) for entry in self._routes if source in (None, entry["source"])]

    def clear_routes(self):
        with self._lock:
            self._routes.clear()
