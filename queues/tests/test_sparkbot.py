"""The SparkBot client: typed results and one error class per row of the contract's table.

Status codes, Retry-After forms and odd bodies come from httpx.MockTransport (the
transport is not what is tested); pagination, auth and timeouts run against the sandbox.
"""

import socket
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from queues import sparkbot
from queues.sparkbot import Device, QueueStats, SparkBotClient, parse_retry_after
from sparkbot_sandbox import DEFAULT_API_KEY
from sparkbot_sandbox.seed import SALES_3, SALES_4, SEED_DEVICES

KEY = "k" * 40
ID = "65a000000000000000000003"


def client_answering(status: int, body: bytes | str = b"", headers: dict | None = None) -> SparkBotClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers or {})

    return SparkBotClient(base_url="http://sparkbot.test/v1", api_key=KEY, timeout=1,
                          transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "status, error_class, retryable",
    [
        (400, sparkbot.BadRequest, False),
        (401, sparkbot.AuthenticationFailed, False),
        (403, sparkbot.PermissionDenied, False),
        (404, sparkbot.DeviceNotFound, False),
        (409, sparkbot.Refused, False),
        (422, sparkbot.Refused, False),
        (429, sparkbot.RateLimited, True),
        (500, sparkbot.Unavailable, True),
        (502, sparkbot.Unavailable, True),
        (503, sparkbot.Unavailable, True),
        (418, sparkbot.UnexpectedReply, False),
    ],
)
def test_it_maps_each_status_code_to_its_error(status, error_class, retryable):
    body = b'{"status": %d, "message": "nope", "errorCode": "some_code"}' % status
    with pytest.raises(error_class) as caught:
        client_answering(status, body).queue_stats(ID)
    error = caught.value
    assert type(error) is error_class
    assert error.retryable is retryable
    assert error.status_code == status
    assert error.detail == "nope" and error.api_code == "some_code"
    assert error.sentence("Sales-3 (+44 1)", "Sales-4 (+44 2)")


def test_it_tells_a_support_lead_the_contract_sentences():
    assert sparkbot.AuthenticationFailed().sentence("a", "b") == (
        "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY.")
    assert sparkbot.DeviceNotFound().sentence("Sales-3 (+441)", "x") == (
        "Sales-3 (+441) is no longer a SparkBot device; refresh the device list.")


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"", ""),
        (b"   ", ""),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "an HTML page instead of JSON"),
        (b"upstream connect error", "upstream connect error"),
        (b'["odd", "json"]', "['odd', 'json']"),
    ],
)
def test_it_survives_empty_html_and_text_error_bodies(body, expected):
    with pytest.raises(sparkbot.Unavailable) as caught:
        client_answering(502, body).queue_stats(ID)
    assert expected in caught.value.detail
    assert caught.value.status_code == 502


def test_it_reads_retry_after_in_seconds():
    with pytest.raises(sparkbot.RateLimited) as caught:
        client_answering(429, b"", {"Retry-After": "7"}).route_queue(ID, SALES_4)
    assert caught.value.retry_after == 7.0


def test_it_reads_retry_after_as_an_http_date():
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    with pytest.raises(sparkbot.RateLimited) as caught:
        client_answering(429, b"", {"Retry-After": format_datetime(later, usegmt=True)}).route_queue(ID, SALES_4)
    assert 25 <= caught.value.retry_after <= 31


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("soon", None), ("0", 0.0), ("120", 120.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: no wait
])
def test_it_parses_retry_after_forms(value, expected):
    assert parse_retry_after(value) == expected


def test_it_treats_an_empty_success_body_as_no_data():
    reply = client_answering(200, b"").route_queue(ID, SALES_4)
    assert reply.data is None and reply.status_code == 200


def test_it_refuses_a_success_body_that_is_not_json_where_the_shape_is_known():
    with pytest.raises(sparkbot.UnexpectedReply):
        client_answering(200, b"<html>welcome</html>").queue_stats(ID)


def test_it_takes_any_2xx_to_the_route_call_and_keeps_a_body_that_is_not_json():
    reply = client_answering(202, "Accepted: moving 37 messages").route_queue(ID, SALES_4)
    assert (reply.status_code, reply.data, reply.text) == (202, None, "Accepted: moving 37 messages")
    assert reply.for_audit == {"not_json": "Accepted: moving 37 messages"}


def test_it_keeps_the_key_out_of_a_route_answer_that_is_not_json():
    reply = client_answering(200, f"ok {KEY}").route_queue(ID, SALES_4)
    assert KEY not in reply.text and reply.text == "ok [removed]"


def trickling_server(*, chunks: int, every: float) -> tuple[str, socket.socket]:
    """An HTTP server that answers at once, then sends its body one byte every `every` seconds:
    each read is quick, the whole answer is slow (what a per-phase timeout never notices)."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               f"Content-Length: {chunks}\r\n\r\n".encode())
            for _ in range(chunks):
                time.sleep(every)
                try:
                    connection.sendall(b" ")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", listener


def test_it_cuts_off_a_whole_call_at_the_timeout_however_slowly_the_answer_trickles():
    url, listener = trickling_server(chunks=40, every=0.1)  # 4 s in all, never 0.1 s without a byte
    client = SparkBotClient(base_url=url, api_key=KEY, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(sparkbot.Timeout):
        client.queue_stats(ID)
    assert time.monotonic() - started < 0.9
    client.close()
    listener.close()


def test_it_refuses_malformed_device_ids_before_calling():
    calls = []
    client = SparkBotClient(base_url="http://x/v1", api_key=KEY, timeout=1,
                            transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200)))
    with pytest.raises(sparkbot.BadRequest):
        client.route_queue("../admin", SALES_4)
    with pytest.raises(sparkbot.BadRequest):
        client.route_queue(ID, "65A000000000000000000004")
    assert calls == []


def test_it_reads_queue_stats_defensively():
    stats = QueueStats.from_api({"status": "active", "total": 5, "pending": "3", "processing": -1, "extra": 1})
    assert stats.total == 5
    assert stats.pending is None and stats.processing is None and stats.scheduled is None
    with pytest.raises(sparkbot.UnexpectedReply):
        QueueStats.from_api(["not", "an", "object"])


def test_it_reads_devices_and_ignores_extra_fields():
    device = Device.from_api({"id": ID, "alias": "A", "phone": "+1", "status": "ready",
                              "session": {"status": "online"}, "billing": {"plan": "x"}})
    assert device.can_deliver and device.is_usable
    odd = Device.from_api({"id": ID, "status": "mystery", "session": None})
    assert odd.alias == ID and not odd.is_usable and odd.session_status == "unknown"
    with pytest.raises(sparkbot.UnexpectedReply):
        Device.from_api({"id": "nope"})


# Against the sandbox ---------------------------------------------------------------------


def sandbox_client(sandbox, *, api_key=DEFAULT_API_KEY, timeout=1.0) -> SparkBotClient:
    return SparkBotClient(base_url=sandbox.api_url, api_key=api_key, timeout=timeout)


def test_it_walks_every_page_of_devices(sandbox):
    devices = sandbox_client(sandbox).devices_all(size=5)
    assert [d.id for d in devices] == [d["id"] for d in SEED_DEVICES]
    pages = [c["query"].get("page") for c in sandbox.calls(method="GET", path_contains="/devices")]
    assert pages == [str(n) for n in range(len(SEED_DEVICES) // 5 + 1)]


def test_it_sends_the_token_header(sandbox):
    sandbox_client(sandbox).queue_stats(SALES_3)
    assert sandbox.calls()[-1]["auth"] == "ok"
    with pytest.raises(sparkbot.AuthenticationFailed):
        sandbox_client(sandbox, api_key="w" * 40).queue_stats(SALES_3)


def test_it_routes_a_queue_in_the_sandbox(sandbox):
    client = sandbox_client(sandbox)
    before, _ = client.queue_stats(SALES_3)
    reply = client.route_queue(SALES_3, SALES_4)
    after, _ = client.queue_stats(SALES_3)
    assert before.total == 37 and after.total == 0
    assert reply.data["moved"] == 37
    assert sandbox.calls(method="PATCH")[0]["body"] == {"device": SALES_4}


def test_it_times_out_on_a_hanging_call(sandbox):
    sandbox.fault(route="queue_get", hang_seconds=2, times=1)
    started = time.monotonic()
    with pytest.raises(sparkbot.Timeout) as caught:
        sandbox_client(sandbox, timeout=0.3).queue_stats(SALES_3)
    assert time.monotonic() - started < 1.5
    assert caught.value.retryable


def test_it_reports_a_refused_connection():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SparkBotClient(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, timeout=1)
    with pytest.raises(sparkbot.ConnectionFailed) as caught:
        client.queue_stats(SALES_3)
    assert caught.value.retryable


def test_it_removes_the_key_and_secret_looking_fields_from_answers():
    body = b'{"token": "abc", "nested": [{"Authorization": "Bearer x"}], "echo": "key=%s", "moved": 3}' % KEY.encode()
    reply = client_answering(200, body).route_queue(ID, SALES_4)
    assert reply.data == {"token": "[removed]", "nested": [{"Authorization": "[removed]"}],
                          "echo": "key=[removed]", "moved": 3}


def test_it_removes_the_key_from_error_messages():
    with pytest.raises(sparkbot.AuthenticationFailed) as caught:
        client_answering(401, b'{"message": "token %s is not valid"}' % KEY.encode()).route_queue(ID, SALES_4)
    assert KEY not in caught.value.detail and KEY not in str(caught.value)
    assert caught.value.detail == "token [removed] is not valid"
