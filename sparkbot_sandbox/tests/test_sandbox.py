"""Behaviour of the SparkBot sandbox over real HTTP (httpx against a threaded server)."""

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sparkbot_sandbox import DEFAULT_API_KEY, SandboxState, serve_in_thread
from sparkbot_sandbox.seed import (
    DISABLED_DEVICE, HTML_ALIAS, HTML_ALIAS_DEVICE, MISSING_DEVICE, MYSTERY_DEVICE,
    OFFLINE_DEVICE, PENDING_DEVICE, READY_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4,
    SEED_DEVICES,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEED_IDS = [d["id"] for d in SEED_DEVICES]


@pytest.fixture(scope="session")
def _point_at_sandbox():
    """No-op override of the project conftest's Django-bound autouse fixture:
    the sandbox is stdlib only and its tests run without Django (-p no:django)."""


@pytest.fixture(scope="module")
def base_url():
    server, url = serve_in_thread(0)
    yield url
    server.shutdown()


@pytest.fixture
def control(base_url):
    """Client for /_sandbox; the state is reset before every test."""
    with httpx.Client(base_url=base_url[: -len("/v1")] + "/_sandbox", timeout=5) as client:
        client.post("/reset").raise_for_status()
        yield client


@pytest.fixture
def api(base_url, control):
    with httpx.Client(base_url=base_url, headers={"Token": DEFAULT_API_KEY}, timeout=5) as client:
        yield client


@pytest.fixture
def anon(base_url, control):
    with httpx.Client(base_url=base_url, timeout=5) as client:
        yield client


def assert_error(response, status, error_code):
    assert response.status_code == status
    body = response.json()
    assert body == {"status": status, "message": body["message"], "errorCode": error_code}
    assert body["message"]


def queue_of(api, dev_id):
    response = api.get(f"/devices/{dev_id}/queue")
    assert response.status_code == 200
    return response.json()


# --- auth ------------------------------------------------------------------------

def test_it_accepts_the_token_header(anon):
    assert anon.get("/devices", headers={"Token": DEFAULT_API_KEY}).status_code == 200


def test_it_accepts_a_bearer_token(anon):
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    assert anon.get("/devices", headers=headers).status_code == 200


def test_it_rejects_a_missing_key(anon):
    response = anon.get("/devices")
    assert response.json() == {"status": 401, "message": "Invalid or missing API key",
                               "errorCode": "unauthorized"}
    assert response.status_code == 401


@pytest.mark.parametrize("headers", [
    {"Token": "wrong-key-0123456789abcdefghijklmnop"},
    {"Authorization": "Bearer wrong-key-0123456789abcdefghijklmnop"},
    {"Authorization": f"Basic {DEFAULT_API_KEY}"},
    {"Token": DEFAULT_API_KEY + "x"},
])
def test_it_rejects_a_bad_key(anon, headers):
    assert_error(anon.get(f"/devices/{SALES_1}/queue", headers=headers), 401, "unauthorized")


# --- listing -------------------------------------------------------------------------

@pytest.mark.parametrize("size", [4, 5, 7])
def test_it_pages_through_all_devices_in_seed_order(api, size):
    seen, page = [], 0
    while True:
        items = api.get("/devices", params={"page": page, "size": size}).json()
        seen += [d["id"] for d in items]
        if len(items) < size:
            break
        assert len(items) == size
        page += 1
    assert seen == SEED_IDS
    assert len(items) == len(SEED_IDS) % size


def test_it_returns_an_empty_page_beyond_the_end(api):
    response = api.get("/devices", params={"page": 50, "size": 5})
    assert response.status_code == 200
    assert response.json() == []


def test_it_defaults_to_the_first_page_of_100(api):
    assert [d["id"] for d in api.get("/devices").json()] == SEED_IDS
    assert len(api.get("/devices", params={"size": 500}).json()) == len(SEED_IDS)


@pytest.mark.parametrize("params", [
    {"page": -1}, {"page": "x"}, {"page": ""}, {"size": 0}, {"size": 501}, {"size": "1.5"},
])
def test_it_rejects_bad_paging_values(api, params):
    assert_error(api.get("/devices", params=params), 400, "invalid_parameter")


def test_it_filters_by_search_in_alias_and_phone(api):
    def aliases(term):
        return [d["alias"] for d in api.get("/devices", params={"search": term}).json()]

    assert aliases("SALES-") == ["Sales-1", "Sales-2", "Sales-3", "Sales-4"]
    assert aliases("zÜrich") == ["Café Zürich — Kundendienst"]
    assert aliases("🎧") == ["Support 🎧 Lisbon"]
    assert aliases("+447700900003") == ["Sales-3"]
    assert aliases("no such thing") == []


def test_it_filters_by_status_and_session_status(api):
    def ids(**params):
        return [d["id"] for d in api.get("/devices", params=params).json()]

    assert ids(status="disabled") == [DISABLED_DEVICE]
    assert ids(status="operative", sessionStatus="offline") == [OFFLINE_DEVICE]
    assert ids(sessionStatus="authorize") == [PENDING_DEVICE]
    assert ids(status="mystery") == [MYSTERY_DEVICE]
    assert ids(status="ready", page=1, size=1) == []


# --- one device ------------------------------------------------------------------

def test_it_returns_one_device_with_extra_fields(api):
    device = api.get(f"/devices/{HTML_ALIAS_DEVICE}").json()
    assert device["alias"] == HTML_ALIAS
    assert re.fullmatch(r"\+\d{8,15}", device["phone"])
    assert device["wid"] == device["phone"][1:] + "@c.us"
    assert device["status"] == "operative" and device["session"]["status"] == "online"
    assert {"createdAt", "plan", "billing"} <= set(device)


def test_it_answers_404_for_an_unknown_device(api):
    assert_error(api.get(f"/devices/{MISSING_DEVICE}"), 404, "device_not_found")
    assert_error(api.get(f"/devices/{MISSING_DEVICE}/queue"), 404, "device_not_found")


@pytest.mark.parametrize("bad_id", [
    SALES_1.upper(), SALES_1[:-1], SALES_1 + "0", "not-a-device", "65a00000000000000000000g",
])
def test_it_answers_400_for_a_malformed_id(api, bad_id):
    assert_error(api.get(f"/devices/{bad_id}"), 400, "invalid_device_id")
    assert_error(api.get(f"/devices/{bad_id}/queue"), 400, "invalid_device_id")


# --- queues ----------------------------------------------------------------------

def test_it_reports_queue_stats(api):
    assert queue_of(api, SALES_3) == {"status": "active", "total": 37, "pending": 35,
                                      "processing": 2, "scheduled": 0}
    assert queue_of(api, SALES_1)["pending"] == 12
    assert queue_of(api, SALES_2)["total"] == 0
    assert queue_of(api, HTML_ALIAS_DEVICE)["total"] == 5


def test_it_sets_the_queue_status(api):
    response = api.post(f"/devices/{SALES_3}/queue", json={"status": "pause"})
    assert response.status_code == 200
    assert response.json()["status"] == "pause" and response.json()["total"] == 37
    api.post(f"/devices/{SALES_3}/queue", json={"status": "active", "force": True})
    assert queue_of(api, SALES_3)["status"] == "active"


@pytest.mark.parametrize("body", [
    None, [], {}, {"status": "stopped"}, {"status": "active", "force": "yes"},
    {"status": "freeze", "force": True},
])
def test_it_rejects_a_bad_queue_status_body(api, body):
    response = api.post(f"/devices/{SALES_3}/queue", content=json.dumps(body) if body is not None
                        else b"{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_body")


def test_it_routes_every_queued_message_to_the_target(api, control):
    control.post(f"/queues/{SALES_3}", json={"scheduled": 3})
    target_before = queue_of(api, SALES_1)
    response = api.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_1})
    assert response.status_code == 200
    reply = response.json()
    assert reply["success"] is True and reply["moved"] == 40
    assert (reply["source"], reply["target"]) == (SALES_3, SALES_1)
    assert reply["queue"]["total"] == 0 and queue_of(api, SALES_3)["total"] == 0
    target_after = queue_of(api, SALES_1)
    assert target_after["total"] == target_before["total"] + 40
    assert (target_after["pending"], target_after["processing"], target_after["scheduled"]) == (
        12 + 35, 2, 3)


def test_it_routes_to_a_ready_target(api):
    response = api.patch(f"/devices/{SALES_1}/queue", json={"device": READY_DEVICE})
    assert response.status_code == 200
    assert queue_of(api, READY_DEVICE)["pending"] == 12


def test_it_answers_an_empty_200_when_the_source_queue_is_empty(api):
    response = api.patch(f"/devices/{SALES_2}/queue", json={"device": SALES_4})
    assert response.status_code == 200
    assert response.content == b""


def test_it_refuses_to_route_a_queue_to_itself(api):
    assert_error(api.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_3}),
                 400, "same_device")


def test_it_accepts_an_operative_target_even_when_offline(api):
    response = api.patch(f"/devices/{SALES_3}/queue", json={"device": OFFLINE_DEVICE})
    assert response.status_code == 200
    assert queue_of(api, OFFLINE_DEVICE)["pending"] == 4 + 35


@pytest.mark.parametrize("target", [DISABLED_DEVICE, PENDING_DEVICE, MYSTERY_DEVICE])
def test_it_refuses_a_target_that_is_not_operative(api, target):
    assert_error(api.patch(f"/devices/{SALES_3}/queue", json={"device": target}),
                 409, "device_not_operative")
    assert queue_of(api, SALES_3)["total"] == 37


def test_it_answers_404_for_a_missing_target(api):
    response = api.patch(f"/devices/{SALES_3}/queue", json={"device": MISSING_DEVICE})
    assert_error(response, 404, "target_not_found")
    assert response.json()["message"] == "Target device not found"


@pytest.mark.parametrize("source, body, status, code", [
    ("bad-id", b"{not json", 400, "invalid_device_id"),
    (MISSING_DEVICE, b"{not json", 404, "device_not_found"),
    (SALES_3, b"{not json", 400, "invalid_body"),
    (SALES_3, b"{}", 400, "invalid_body"),
    (SALES_3, b'{"device": "SALES"}', 400, "invalid_device_id"),
    (SALES_3, f'{{"device": "{MISSING_DEVICE}"}}'.encode(), 404, "target_not_found"),
])
def test_it_checks_route_inputs_in_order(api, source, body, status, code):
    response = api.patch(f"/devices/{source}/queue", content=body,
                         headers={"Content-Type": "application/json"})
    assert_error(response, status, code)


# --- faults and latency ------------------------------------------------------------

def test_it_injects_a_fault_for_n_calls_then_recovers(api, control):
    fault = {"method": "PATCH", "route": "route_queue", "status": 500, "times": 2}
    assert control.post("/faults", json=fault).status_code == 201
    assert api.get(f"/devices/{SALES_3}/queue").status_code == 200  # other route untouched
    for _ in range(2):
        assert_error(api.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_1}),
                     500, "server_error")
    assert queue_of(api, SALES_3)["total"] == 37  # faulted calls changed nothing
    assert api.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_1}).status_code == 200
    assert control.get("/faults").json() == []
    statuses = [c["status"] for c in control.get("/calls").json() if c["method"] == "PATCH"]
    assert statuses == [500, 500, 200]


def test_it_sends_retry_after_with_a_fault(api, control):
    control.post("/faults", json={"route": "*", "status": 429, "retry_after": "2"})
    response = api.get("/devices")
    assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "2"
    assert api.get("/devices").status_code == 200


@pytest.mark.parametrize("raw, content_type", [
    ("<html>Bad gateway</html>", "text/html; charset=utf-8"), ("", None),
])
def test_it_sends_a_raw_fault_body(api, control, raw, content_type):
    control.post("/faults", json={"route": "devices_list", "status": 502, "body": raw})
    response = api.get("/devices")
    assert response.status_code == 502
    assert response.text == raw
    assert response.headers.get("Content-Type") == content_type


def test_it_matches_faults_by_device(api, control):
    control.post("/faults", json={"route": "queue_get", "status": 503, "device": SALES_1})
    assert api.get(f"/devices/{SALES_2}/queue").status_code == 200
    assert api.get(f"/devices/{SALES_1}/queue").status_code == 503


def test_it_hangs_a_call_until_the_client_times_out(api, control):
    control.post("/faults", json={"route": "device_get", "status": 504, "hang_seconds": 0.5})
    with pytest.raises(httpx.ReadTimeout):
        api.get(f"/devices/{SALES_1}", timeout=0.1)
    assert api.get(f"/devices/{SALES_1}").status_code == 200


def test_it_hangs_then_answers_normally_without_a_status(api, control):
    control.post("/faults", json={"route": "queue_get", "hang_seconds": 0.3})
    started = time.monotonic()
    assert queue_of(api, SALES_3)["total"] == 37
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("fault", [
    {}, {"route": "nope", "status": 500}, {"status": 99}, {"status": 500, "times": 0},
    {"status": 500, "colour": "red"}, {"hang_seconds": -1}, [],
])
def test_it_rejects_bad_fault_definitions(control, fault):
    assert_error(control.post("/faults", json=fault), 400, "invalid_body")


def test_it_clears_faults(api, control):
    control.post("/faults", json={"status": 500, "times": 5})
    assert control.delete("/faults").status_code == 200
    assert api.get("/devices").status_code == 200


def test_it_adds_latency_to_every_call(api, control):
    assert control.post("/latency", json={"ms": 200}).json()["ms"] == 200
    started = time.monotonic()
    api.get("/devices")
    assert time.monotonic() - started >= 0.2
    assert control.get("/calls").json()[-1]["duration_ms"] >= 200
    assert_error(control.post("/latency", json={"ms": -5}), 400, "invalid_body")


# --- calls, reset and control ---------------------------------------------------------

def test_it_records_calls_without_the_key(anon, control):
    anon.get("/devices", params={"page": 0, "size": 5}, headers={"Token": DEFAULT_API_KEY})
    anon.get("/devices")
    anon.get("/devices", headers={"Authorization": "Bearer not-the-key-0123456789abcdef"})
    anon.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_1},
               headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"})
    anon.get("/devices", params={"token": DEFAULT_API_KEY}, headers={"Token": DEFAULT_API_KEY})
    calls = control.get("/calls").json()
    assert [(c["method"], c["status"], c["auth"]) for c in calls] == [
        ("GET", 200, "ok"), ("GET", 401, "missing"), ("GET", 401, "bad"),
        ("PATCH", 200, "ok"), ("GET", 200, "ok"),
    ]
    assert calls[0]["path"] == "/v1/devices" and calls[0]["query"] == {"page": "0", "size": "5"}
    assert calls[3]["body"] == {"device": SALES_1} and calls[0]["body"] is None
    assert all(isinstance(c["at"], float) and c["duration_ms"] >= 0 for c in calls)
    assert DEFAULT_API_KEY not in json.dumps(calls)
    control.delete("/calls")
    assert control.get("/calls").json() == []


def test_it_resets_to_the_seed(api, control):
    api.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_1})
    control.post(f"/devices/{SALES_2}/remove")
    control.post("/faults", json={"status": 500, "times": 9})
    control.post("/latency", json={"ms": 50})
    control.post("/reset")
    assert control.get("/calls").json() == []
    state = control.get("/devices").json()
    assert state["faults"] == [] and state["latencyMs"] == 0
    assert [d["id"] for d in state["devices"]] == SEED_IDS
    assert queue_of(api, SALES_3)["total"] == 37


def test_it_sets_queue_counts_through_control(api, control):
    reply = control.post(f"/queues/{SALES_4}", json={"pending": 3, "processing": 1,
                                                     "scheduled": 2})
    assert reply.json()["total"] == 6
    assert queue_of(api, SALES_4) == {"status": "active", "total": 6, "pending": 3,
                                      "processing": 1, "scheduled": 2}
    assert_error(control.post(f"/queues/{SALES_4}", json={"pending": -1}), 400, "invalid_body")
    assert_error(control.post(f"/queues/{MISSING_DEVICE}", json={"pending": 1}),
                 404, "device_not_found")


def test_it_removes_a_device_after_it_was_listed(api, control):
    assert control.post(f"/devices/{SALES_2}/remove").json() == {"ok": True, "removed": SALES_2}
    assert SALES_2 not in [d["id"] for d in api.get("/devices").json()]
    assert_error(api.get(f"/devices/{SALES_2}/queue"), 404, "device_not_found")
    assert_error(api.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_2}),
                 404, "target_not_found")


def test_it_updates_a_device_through_control(api, control):
    control.post(f"/devices/{SALES_4}", json={"status": "banned", "sessionStatus": "blocked"})
    device = api.get(f"/devices/{SALES_4}").json()
    assert (device["status"], device["session"]["status"]) == ("banned", "blocked")
    assert_error(api.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_4}),
                 409, "device_not_operative")


def test_it_answers_json_404_and_405(api, control):
    assert_error(api.get("/nothing-here"), 404, "not_found")
    assert_error(api.put(f"/devices/{SALES_1}", json={}), 405, "method_not_allowed")
    assert_error(api.delete("/devices"), 405, "method_not_allowed")
    assert_error(control.get("/reset"), 405, "method_not_allowed")
    assert_error(httpx.get(str(api.base_url).replace("/v1", "/elsewhere")), 404, "not_found")


def test_it_generates_extra_devices_deterministically():
    server, url = serve_in_thread(0, state=SandboxState(extra_devices=1000))
    try:
        headers = {"Token": DEFAULT_API_KEY}
        pages = [httpx.get(f"{url}/devices", params={"page": p, "size": 500},
                           headers=headers).json() for p in range(3)]
    finally:
        server.shutdown()
    devices = [d for page in pages for d in page]
    assert len(devices) == len(SEED_IDS) + 1000 and len(pages[2]) == len(devices) - 1000
    extra = devices[len(SEED_IDS):]
    assert extra[0]["alias"] == "Agent 0001" and extra[0]["phone"] == "+34600000001"
    assert len({d["id"] for d in devices}) == len(devices)
    assert all(re.fullmatch(r"[0-9a-f]{24}", d["id"]) for d in devices)
    assert {d["status"] for d in extra} >= {"operative", "ready", "disabled"}


# --- CLI -------------------------------------------------------------------------

def _read_line(stream, timeout):
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    assert selector.select(timeout), "sandbox printed nothing"
    return stream.readline()


def test_it_runs_from_the_command_line_and_stops_on_sigterm():
    env = {**os.environ, "SPARKBOT_API_KEY": "cli-key-0123456789abcdefghijklmnopqrs"}
    proc = subprocess.Popen([sys.executable, "-m", "sparkbot_sandbox", "--port", "0"],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = _read_line(proc.stdout, 5).strip()
        match = re.fullmatch(r"SparkBot sandbox on (http://127\.0\.0\.1:(\d+)/v1)", line)
        assert match and match.group(2) != "0", line
        url = match.group(1)
        ok = httpx.get(f"{url}/devices", headers={"Token": env["SPARKBOT_API_KEY"]})
        assert ok.status_code == 200 and len(ok.json()) == len(SEED_IDS)
        assert httpx.get(f"{url}/devices", headers={"Token": DEFAULT_API_KEY}).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


# --- chaos and the route ledger -------------------------------------------------------

def chaos(control, **settings):
    response = control.post("/chaos", json={"seed": 7, **settings})
    assert response.status_code == 201, response.text
    return response.json()["chaos"]


def route_sales_3(api, **kwargs):
    return api.patch(f"/devices/{SALES_3}/queue", json={"device": SALES_1}, **kwargs)


@pytest.mark.parametrize("kind, status, content_type", [
    ("server_error", 500, "application/json; charset=utf-8"),
    ("bad_gateway", 502, "text/html"),
    ("rate_limited", 429, "application/json; charset=utf-8"),
])
def test_it_fails_calls_at_random_with_an_error_answer(api, control, kind, status, content_type):
    chaos(control, rate=1, kinds=[kind], retry_after=3)
    response = route_sales_3(api)
    assert response.status_code == status
    assert response.headers["Content-Type"] == content_type
    if kind == "bad_gateway":
        assert "<h1>502 Bad Gateway</h1>" in response.text
    else:
        assert_error(response, status, "rate_limited" if status == 429 else "server_error")
    assert response.headers.get("Retry-After") == ("3" if kind == "rate_limited" else None)
    assert queue_of_without_chaos(api, control, SALES_3)["total"] == 37  # not carried out
    assert control.get("/routes").json() == []


def queue_of_without_chaos(api, control, dev_id):
    control.delete("/chaos")
    return queue_of(api, dev_id)


def test_it_hangs_a_route_call_past_the_timeout_and_never_carries_it_out(api, control):
    chaos(control, rate=1, kinds=["hang"], hang_seconds=0.4)
    with pytest.raises(httpx.ReadTimeout):
        route_sales_3(api, timeout=0.1)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):  # a patient client sees the connection close
        route_sales_3(api, timeout=5)
    assert time.monotonic() - started >= 0.4
    time.sleep(0.4)
    assert queue_of_without_chaos(api, control, SALES_3)["total"] == 37
    assert control.get("/routes").json() == []


def test_it_answers_a_hung_read_late_or_closes_the_connection(api, control):
    chaos(control, rate=1, kinds=["hang"], hang_seconds=0.2, routes=["queue_get"])
    outcomes = []
    for _ in range(12):
        started = time.monotonic()
        try:
            outcomes.append(api.get(f"/devices/{SALES_3}/queue", timeout=5).json()["total"])
        except httpx.RemoteProtocolError:
            outcomes.append("closed")
        assert time.monotonic() - started >= 0.2
    assert set(outcomes) == {37, "closed"}
    assert api.get("/devices").status_code == 200  # other routes untouched


@pytest.mark.parametrize("hang_seconds, timeout, error", [
    (0.3, 0.1, httpx.ReadTimeout), (0.2, 5, httpx.RemoteProtocolError),
])
def test_it_carries_out_a_route_call_whose_answer_it_loses(api, control, hang_seconds, timeout, error):
    chaos(control, rate=1, kinds=["lost_answer"], hang_seconds=hang_seconds, seed=1)
    lost = 0
    for _ in range(4):
        control.post(f"/queues/{SALES_3}", json={"pending": 5, "processing": 0, "scheduled": 0})
        try:
            route_sales_3(api, timeout=timeout)
        except error:
            lost += 1
    assert lost == 4
    assert queue_of_without_chaos(api, control, SALES_3)["total"] == 0
    routes = control.get("/routes").json()
    assert [(r["source"], r["target"], r["moved"], r["answer_lost"]) for r in routes] == \
        [(SALES_3, SALES_1, 5, True)] * 4
    assert queue_of(api, SALES_1)["total"] == 12 + 20


def test_it_answers_slowly_so_that_no_read_times_out_but_the_call_lasts(api, control):
    chaos(control, rate=1, kinds=["slow_answer"], slow_seconds=1.2)
    started = time.monotonic()
    response = route_sales_3(api, timeout=0.5)  # httpx's timeout bounds each read, not the call
    assert time.monotonic() - started >= 1.2
    assert response.json()["moved"] == 37
    started = time.monotonic()
    assert api.get(f"/devices/{SALES_3}/queue", timeout=0.5).json()["total"] == 0
    assert time.monotonic() - started >= 1.2
    routes = control.get("/routes").json()
    assert [(r["moved"], r["answer_lost"]) for r in routes] == [(37, False)]


def test_it_picks_a_kind_listed_twice_twice_as_often(api, control):
    chaos(control, rate=1, kinds=["server_error", "server_error", "bad_gateway"])
    for _ in range(300):
        api.get("/devices")
    injected = control.get("/chaos").json()["injected"]
    assert 1.5 <= injected["server_error"] / injected["bad_gateway"] <= 2.7


def test_it_loses_answers_of_route_calls_only(api, control):
    chaos(control, rate=1, kinds=["lost_answer"])
    assert api.get(f"/devices/{SALES_3}/queue").status_code == 200
    assert api.post(f"/devices/{SALES_3}/queue", json={"status": "pause"}).status_code == 200
    assert control.get("/chaos").json()["injected"]["lost_answer"] == 0


def test_it_fails_about_the_share_of_calls_asked_for_and_counts_them_by_kind(api, control):
    chaos(control, rate=0.3, kinds=["server_error", "bad_gateway", "rate_limited"])
    statuses = [api.get(f"/devices/{SALES_2}").status_code for _ in range(400)]
    report = control.get("/chaos").json()
    failures = {code: statuses.count(code) for code in (500, 502, 429)}
    assert 80 <= sum(failures.values()) <= 160
    assert report["injected"] == {"server_error": failures[500], "bad_gateway": failures[502],
                                  "rate_limited": failures[429], "hang": 0, "lost_answer": 0,
                                  "slow_answer": 0}
    assert report["total"] == sum(failures.values()) and report["calls"] == 400
    assert report["by_route"] == {"device_get": {kind: n for kind, n in report["injected"].items() if n}}
    assert report["active"] and report["settings"]["rate"] == 0.3


def test_it_stops_chaos_but_keeps_its_counts_until_reset(api, control):
    chaos(control, rate=1, kinds=["server_error"])
    assert api.get("/devices").status_code == 500
    stopped = control.delete("/chaos").json()
    assert stopped["active"] is False and stopped["settings"] is None
    assert stopped["injected"]["server_error"] == 1
    assert api.get("/devices").status_code == 200
    control.post("/reset")
    assert control.get("/chaos").json()["total"] == 0


def test_it_applies_chaos_to_the_routes_asked_for_only(api, control):
    chaos(control, rate=1, kinds=["server_error"], routes=["queue_get"])
    assert api.get(f"/devices/{SALES_3}/queue").status_code == 500
    assert route_sales_3(api).status_code == 200


def test_it_records_chaos_in_the_calls(api, control):
    chaos(control, rate=1, kinds=["lost_answer"], hang_seconds=0.1)
    with pytest.raises(httpx.TransportError):
        route_sales_3(api)
    control.delete("/chaos")
    chaos(control, rate=1, kinds=["server_error"])
    api.get("/devices")
    calls = control.get("/calls").json()
    assert [(c["method"], c["status"], c["chaos"]) for c in calls] == [
        ("PATCH", None, "lost_answer"), ("GET", 500, "server_error")]


def test_it_keeps_a_ledger_of_every_route_carried_out(api, control):
    started = time.time()
    assert route_sales_3(api).status_code == 200
    assert route_sales_3(api).status_code == 200  # empty queue: carried out, nothing moved
    control.post("/faults", json={"route": "route_queue", "status": 500})
    assert route_sales_3(api).status_code == 500  # refused: not carried out
    assert api.patch(f"/devices/{SALES_1}/queue", json={"device": SALES_2}).status_code == 200
    routes = control.get("/routes").json()
    assert [(r["source"], r["target"], r["moved"], r["answer_lost"]) for r in routes] == [
        (SALES_3, SALES_1, 37, False), (SALES_3, SALES_1, 0, False), (SALES_1, SALES_2, 49, False)]
    assert all(started <= r["at"] <= time.time() for r in routes)
    assert [r["moved"] for r in control.get("/routes", params={"source": SALES_1}).json()] == [49]
    assert control.delete("/routes").status_code == 200
    assert control.get("/routes").json() == []
    route_sales_3(api)
    control.post("/reset")
    assert control.get("/routes").json() == []


@pytest.mark.parametrize("settings", [
    {}, {"rate": 1.5}, {"rate": -0.1}, {"rate": "0.1"}, {"rate": 0.1, "kinds": []},
    {"rate": 0.1, "kinds": ["fire"]}, {"rate": 0.1, "routes": ["nope"]}, {"rate": 0.1, "hang_seconds": 0},
    {"rate": 0.1, "retry_after": 1.5}, {"rate": 0.1, "seed": "x"}, {"rate": 0.1, "colour": "red"}, [],
    {"rate": 0.1, "slow_seconds": 0},
])
def test_it_rejects_bad_chaos_settings(control, settings):
    assert_error(control.post("/chaos", json=settings), 400, "invalid_body")
    assert control.get("/chaos").json()["active"] is False
