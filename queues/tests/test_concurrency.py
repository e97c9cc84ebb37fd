"""Two people, or two clicks, at the same moment: one reroute, and a clear answer for the other.

Marked `embedded`: the database's own constraints decide, on PostgreSQL and on SQLite.
"""

import threading
import uuid

import pytest
from django.db import connections
from django.test import Client

from queues.models import Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_3, SALES_4

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def post_at_once(clients_and_forms) -> list:
    """POST /reroute/ from each client at the same instant; their responses, in order."""
    barrier = threading.Barrier(len(clients_and_forms))
    responses = [None] * len(clients_and_forms)

    def post(index, client, form):
        barrier.wait()
        try:
            responses[index] = client.post("/reroute/", form)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(i, client, form))
               for i, (client, form) in enumerate(clients_and_forms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_lets_only_one_of_two_leads_route_the_same_source(celery_worker, sandbox, lead, make_user):
    other = make_user("lead2", "Support lead")
    first, second = signed_in(lead), signed_in(other)
    first.get("/reroute/")  # the device list is cached before the race
    responses = post_at_once([
        (first, {"source": SALES_3, "target": SALES_4, "idempotency_key": str(uuid.uuid4())}),
        (second, {"source": SALES_3, "target": SALES_1, "idempotency_key": str(uuid.uuid4())}),
    ])
    reroute = Reroute.objects.get()
    winner, loser = sorted(responses, key=lambda r: r.status_code, reverse=True)  # 302 first, then 200
    assert winner.status_code == 302 and winner["Location"] == f"/reroutes/{reroute.pk}/"
    assert loser.status_code == 200
    assert f'Sales-3 is already being rerouted: <a href="/reroutes/{reroute.pk}/">reroute #{reroute.pk}</a>' in (
        loser.content.decode())


def test_it_makes_one_reroute_of_a_form_posted_twice_at_once(celery_worker, sandbox, lead):
    client = signed_in(lead)
    client.get("/reroute/")
    form = {"source": SALES_3, "target": SALES_4, "idempotency_key": str(uuid.uuid4())}
    responses = post_at_once([(client, form), (signed_in(lead), form)])
    reroute = Reroute.objects.get()
    assert [r.status_code for r in responses] == [302, 302]
    assert {r["Location"] for r in responses} == {f"/reroutes/{reroute.pk}/"}
