"""Deterministic seed data for the SparkBot sandbox.

`SEED_DEVICES` holds the devices exactly as `GET /v1/devices` returns them (in
that order); `SEED_QUEUES` holds their initial queue counts (devices not listed
start empty). `extra_devices(n)` generates bulk devices for benchmarks.
"""

import copy


def device_id(number, prefix="65a"):
    """A deterministic 24-character lowercase hex id, e.g. 65a000000000000000000001."""
    return f"{prefix}{number:021d}"


SALES_1 = device_id(1)
SALES_2 = device_id(2)
SALES_3 = device_id(3)
SALES_4 = device_id(4)
READY_DEVICE = device_id(5)
OFFLINE_DEVICE = device_id(6)
TIMEOUT_DEVICE = device_id(7)
HTML_ALIAS_DEVICE = device_id(8)
IMG_ALIAS_DEVICE = device_id(9)
DISABLED_DEVICE = device_id(10)
UNPAID_DEVICE = device_id(11)
BANNED_DEVICE = device_id(12)
PENDING_DEVICE = device_id(13)
MYSTERY_DEVICE = device_id(14)
SCHEDULED_DEVICE = device_id(15)
MISSING_DEVICE = device_id(999)  # well-formed id that no device has

HTML_ALIAS = "<b>Bold</b> & \"Quotes\" 'n' <script>alert('x')</script>"
IMG_ALIAS = "<img src=x onerror=alert(1)>"

# (id, alias, status, session status, (pending, processing, scheduled))
_SEED_ROWS = [
    (SALES_1, "Sales-1", "operative", "online", (12, 0, 0)),
    (SALES_2, "Sales-2", "operative", "online", (0, 0, 0)),
    (SALES_3, "Sales-3", "operative", "online", (35, 2, 0)),
    (SALES_4, "Sales-4", "operative", "online", (0, 0, 0)),
    (READY_DEVICE, "Support 🎧 Lisbon", "ready", "online", (0, 0, 0)),
    (OFFLINE_DEVICE, "Café Zürich — Kundendienst", "operative", "offline", (4, 0, 0)),
    (TIMEOUT_DEVICE, "日本 サポート", "operative", "timeout", (0, 0, 0)),
    (HTML_ALIAS_DEVICE, HTML_ALIAS, "operative", "online", (5, 0, 0)),
    (IMG_ALIAS_DEVICE, IMG_ALIAS, "operative", "online", (0, 0, 0)),
    (DISABLED_DEVICE, "Billing Desk", "disabled", "offline", (0, 0, 0)),
    (UNPAID_DEVICE, "Unpaid Line", "unpaid", "offline", (0, 0, 0)),
    (BANNED_DEVICE, "Banned Line", "banned", "blocked", (0, 0, 0)),
    (PENDING_DEVICE, "New Number", "pending", "authorize", (0, 0, 0)),
    (MYSTERY_DEVICE, "Mystery Line", "mystery", "online", (0, 0, 0)),
    (SCHEDULED_DEVICE, "Campaigns", "operative", "online", (1, 0, 6)),
]

# Bulk devices cycle through these (status, session status) pairs.
_EXTRA_STATUS_CYCLE = [("operative", "online")] * 6 + [
    ("operative", "offline"),
    ("ready", "online"),
    ("operative", "timeout"),
    ("disabled", "offline"),
]
MAX_EXTRA_DEVICES = 9999


def make_device(dev_id, alias, phone, status, session_status, number):
    """A device object shaped like the real API's, extra fields included."""
    created_at = f"2024-{1 + number % 12:02d}-{1 + number % 28:02d}T09:00:00.000Z"
    return {
        "id": dev_id,
        "alias": alias,
        "phone": phone,
        "wid": f"{phone.lstrip('+')}@c.us",
        "status": status,
        "session": {"status": session_status, "appVersion": "2.3000.1012"},
        "createdAt": created_at,
        "plan": "professional",
        "billing": {
            "subscription": "past_due" if status == "unpaid" else "active",
            "currency": "EUR",
        },
        "settings": {"autoReply": False, "region": "eu"},
    }


def _queue(counts):
    pending, processing, scheduled = counts
    return {"pending": pending, "processing": processing, "scheduled": scheduled}


SEED_DEVICES = [
    make_device(dev_id, alias, f"+4477009000{n:02d}", status, session, n)
    for n, (dev_id, alias, status, session, _) in enumerate(_SEED_ROWS, start=1)
]
SEED_QUEUES = {row[0]: _queue(row[4]) for row in _SEED_ROWS if any(row[4])}


def extra_devices(count):
    """`count` generated devices ("Agent 0001"...) and their queue counts."""
    if not 0 <= count <= MAX_EXTRA_DEVICES:
        raise ValueError(f"extra devices must be between 0 and {MAX_EXTRA_DEVICES}")
    devices, queues = [], {}
    for n in range(1, count + 1):
        dev_id = device_id(n, prefix="65b")
        status, session = _EXTRA_STATUS_CYCLE[n % len(_EXTRA_STATUS_CYCLE)]
        phone = f"+3460000{n:04d}"
        devices.append(make_device(dev_id, f"Agent {n:04d}", phone, status, session, n))
        if n % 4 == 0:
            queues[dev_id] = _queue(((n * 7) % 11, n % 2, 0))
    return devices, queues


def initial_state(extra=0):
    """Fresh copies of (devices list, queue counts by id), seed first then extras."""
    more_devices, more_queues = extra_devices(extra)
    devices = copy.deepcopy(SEED_DEVICES) + more_devices
    queues = {**copy.deepcopy(SEED_QUEUES), **more_queues}
    return devices, queues
