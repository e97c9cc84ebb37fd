"""The API under the same request twice at the same instant (an n8n retry racing the first try), and two
callers racing for one source: the database decides, on PostgreSQL and on SQLite (marked `embedded`)."""

import json
import threading

import pytest
from django.db import connections
from django.test import Client

from queues import devices, tokens
from queues.models import Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_3, SALES_4

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def post_at_once(calls) -> list:
    """POST /api/v1/reroutes for each (token, key, body) at the same instant; the responses, in order."""
    barrier = threading.Barrier(len(calls))
    responses = [None] * len(calls)

    def post(index, token, key, body):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if key:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        barrier.wait()
        try:
            responses[index] = Client().post("/api/v1/reroutes", json.dumps(body), content_type="application/json",
                                             **headers)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses


def test_it_makes_one_reroute_of_the_same_key_sent_twice_at_once(celery_worker, sandbox, lead):
    devices.device_list()  # cached before the race
    token = tokens.token_create(owner=lead, name="n8n").secret
    body = {"source": SALES_3, "target": SALES_4}
    responses = post_at_once([(token, "exec-7", body), (token, "exec-7", body)])
    reroute = Reroute.objects.get()
    assert [r.status_code for r in responses] == [202, 202]
    assert {r["Location"] for r in responses} == {f"http://testserver/api/v1/reroutes/{reroute.pk}"}


def test_it_lets_one_of_two_callers_route_a_source_and_names_it_to_the_other(celery_worker, sandbox, lead, make_user):
    devices.device_list()
    first = tokens.token_create(owner=lead, name="a").secret
    second = tokens.token_create(owner=make_user("lead2", "Support lead"), name="b").secret
    responses = post_at_once([(first, None, {"source": SALES_3, "target": SALES_4}),
                              (second, None, {"source": SALES_3, "target": SALES_1})])
    reroute = Reroute.objects.get()
    winner, loser = sorted(responses, key=lambda r: r.status_code)
    assert winner.status_code == 202 and loser.status_code == 409
    assert loser.json()["active_reroute"]["id"] == reroute.pk
