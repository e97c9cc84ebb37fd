"""The SparkBot API key never shows: not in a page, a log line, a stored reply, an event or an error.

A recognisable key is given to a sandbox of its own, to this process and to a worker of
its own (on a private broker, logging at DEBUG); reroutes succeed and fail, SparkBot even
echoes the key in an error message; then every captured log line, every database row and
every page is searched for it.
"""

import logging
import uuid

import pytest
from django.apps import apps
from queues.models import Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4
from sparkbot_sandbox.state import SandboxState
from tests.support import Sandbox, sparkbot_settings

pytestmark = pytest.mark.django_db(transaction=True)
CANARY = "sk-canary-" + "7f3a9c2e51b84d06" * 3  # easy to find, 30 to 200 characters


@pytest.fixture(scope="module")
def canary_sandbox():
    box = Sandbox(SandboxState(api_key=CANARY))
    yield box
    box.stop()


@pytest.fixture(scope="module")
def canary_worker(worker_on_broker, canary_sandbox):
    return worker_on_broker(canary_sandbox.api_url, env={"SPARKBOT_API_KEY": CANARY, "LOG_LEVEL": "DEBUG"},
                            loglevel="DEBUG")


@pytest.fixture
def canary_settings(canary_sandbox):
    canary_sandbox.reset()
    with sparkbot_settings(SPARKBOT_API_KEY=CANARY, SPARKBOT_API_URL=canary_sandbox.api_url):
        yield canary_sandbox


def every_row_as_text() -> str:
    rows = []
    for model in apps.get_models():
        for values in model.objects.values_list():
            rows.append(repr(values))
    return "\n".join(rows)


def wait_until_ended(pk: int) -> Reroute:
    import time

    for _ in range(600):
        reroute = Reroute.objects.get(pk=pk)
        if not reroute.is_active:
            return reroute
        time.sleep(0.05)
    raise AssertionError(f"reroute {pk} did not end")


def test_it_never_shows_the_api_key(canary_worker, canary_settings, lead_client, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox = canary_settings
    pages = [lead_client.get("/reroute/").content.decode()]

    def reroute(source, target):
        response = lead_client.post("/reroute/", {"source": source, "target": target, "note": "canary",
                                                  "idempotency_key": str(uuid.uuid4())})
        assert response.status_code == 302, response.content.decode()[:1000]
        return wait_until_ended(int(response["Location"].strip("/").split("/")[-1]))

    succeeded = reroute(SALES_3, SALES_4)
    sandbox.fault(route="route_queue", status=401, times=1,
                  body=f'{{"status": 401, "message": "token {CANARY} is not valid", "errorCode": "unauthorized"}}')
    refused = reroute(SALES_1, SALES_2)
    sandbox.fault(route="queue_get", status=500, times=10, body=f"<html>upstream said {CANARY}</html>")
    unavailable = reroute(SALES_4, SALES_3)
    assert (succeeded.status, refused.status, unavailable.status) == ("succeeded", "failed", "failed")
    for done in (succeeded, refused, unavailable):
        pages.append(lead_client.get(f"/reroutes/{done.pk}/").content.decode())
        pages.append(lead_client.get(f"/reroutes/{done.pk}/", HTTP_HX_REQUEST="true").content.decode())

    worker_log = canary_worker.log_path.read_text()
    assert "SparkBot PATCH /devices/" in worker_log and "'token': '[removed]'" in worker_log  # requests are logged
    assert CANARY not in worker_log
    assert CANARY not in caplog.text
    assert CANARY not in every_row_as_text()
    for page in pages:
        assert CANARY not in page
    assert sandbox.calls()[0]["auth"] == "ok"  # the key was really used
