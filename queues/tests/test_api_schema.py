"""schemathesis against the live OpenAPI document: every operation, positive and negative cases, no failure.

The document is fetched from the running app (live_server, over HTTP, with a token), as any client
would; every generated call goes through the same server. The caller is an admin, so that every
operation answers on its merits. 422 is an expected answer to data the document calls valid in two
places only, where validity is state or meaning the document cannot express: a number's name must
exist in SparkBot's device list (reroute_create), and the history's filters check ranges and text
lengths after trimming (reroute_list).
"""

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings as hypothesis_settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from queues import devices, handovers, monitor, services, tokens
from queues.api import numbers
from queues.models import HandoverPlan, Rule
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

pytestmark = pytest.mark.django_db(transaction=True)
ACCEPTED = ["2xx", "401", "403", "404", "409", "429"]
CONFIG = {
    "seed": 20261125,  # the same cases every run: `make test` is repeatable; change it to explore afresh
    "generation": {"mode": "all", "max-examples": 25},
    "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
    "operations": [
        {"include-operation-id": "reroute_create",
         "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422", "503"]}}},
        {"include-operation-id": "reroute_list",
         "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}}},
        {"include-operation-id": "handover_run_start",
         "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "503"]}}},
    ],
}


@pytest.fixture
def bearer(sandbox, make_user, settings, django_capture_on_commit_callbacks):
    """An admin's token, over a site with something to read: numbers, an ended and a queued reroute, a run,
    a rule."""
    cache.clear()
    settings.API_TOKEN_REQUESTS_PER_MINUTE = 1_000_000  # this test is about shapes, not the throttle
    admin = make_user("schema-admin", "Admin")
    monitor.monitor_cycle()
    found = devices.device_list()
    with django_capture_on_commit_callbacks(execute=False):
        ended = services.reroute_request(source=found.get(SALES_3), target=found.get(SALES_4), note="", user=admin)
        services.reroute_request(source=found.get(SALES_1), target=found.get(SALES_2), note="queued", user=admin)
        plan = handovers.plan_save(plan=HandoverPlan(name="Evening"), pairs=[(SALES_4, SALES_3)], user=admin)
        handovers.handover_start(plan=plan, user=admin)
    services.reroute_execute(reroute_id=ended.pk)
    Rule.objects.create(name="Sales failover", owner_username="schema-admin", sources=[SALES_1], targets=[SALES_2])
    return {"Authorization": f"Bearer {tokens.token_create(owner=admin, name='schemathesis').secret}"}


@pytest.fixture
def live_schema(live_server, bearer):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json", headers=bearer,
                                         config=SchemathesisConfig.from_dict(CONFIG))


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@hypothesis_settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_it_keeps_every_promise_of_its_openapi_document(case, live_server, bearer):
    case.call_and_validate(base_url=live_server.url, headers=bearer)


def test_it_fails_when_an_answer_breaks_the_document(live_schema, live_server, bearer, monkeypatch):
    """The check above can fail: a number answered without its queue breaks the promised shape (ninja refuses
    to send it, and the 500 is what schemathesis reports)."""
    monkeypatch.setattr(numbers, "number_out", lambda number: {"id": number.device_id})
    case = live_schema["/api/v1/numbers"]["GET"].Case()
    with pytest.raises(FailureGroup, match="Server error"):
        case.call_and_validate(base_url=live_server.url, headers=bearer)
