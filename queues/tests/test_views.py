"""The route page, its htmx fragments and the reroute page, through Django's test client."""

import re
import uuid

import pytest
from django.urls import reverse

from queues import services
from queues.models import Reroute
from sparkbot_sandbox.seed import HTML_ALIAS, SALES_2, SALES_3, SALES_4, SEED_DEVICES

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def post_reroute(client, *, htmx=False, **overrides):
    data = {"source": SALES_3, "target": SALES_4, "note": "night", "idempotency_key": str(uuid.uuid4()), **overrides}
    with_headers = HTMX if htmx else {}
    return client.post(reverse("queues:reroute"), data, **with_headers)


def test_it_sends_anonymous_visitors_to_sign_in(client, sandbox):
    for url in ["/", "/reroute/", "/reroute/queue/?source=" + SALES_3, "/reroutes/1/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    assert client.get("/accounts/login/").status_code == 200


def test_it_redirects_home_to_the_route_page(lead_client, sandbox):
    assert lead_client.get("/")["Location"] == "/reroute/"


def test_it_shows_both_select_boxes_filled_from_sparkbot(lead_client, sandbox):
    html = lead_client.get("/reroute/").content.decode()
    assert '<label for="id_source">WhatsApp number</label>' in html
    assert '<label for="id_target">Target WhatsApp number</label>' in html
    for name in ("source", "target"):
        select = re.search(rf'<select id="id_{name}" name="{name}".*?</select>', html, re.S).group(0)
        assert select.count("<option") == len(SEED_DEVICES) + 1
    assert "Sales-3 · +447700900003 · can deliver now" in html
    assert "cannot deliver now (offline)" in html and "not usable (disabled)" in html
    assert 'name="note"' in html and 'name="idempotency_key"' in html
    assert "Refresh devices" in html


def test_it_shows_aliases_as_text(lead_client, sandbox):
    html = lead_client.get("/reroute/").content.decode()
    assert HTML_ALIAS not in html and "<script>alert" not in html
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &quot;Quotes&quot;" in html


def test_it_starts_a_reroute_and_answers_htmx_with_its_live_status(lead_client, sandbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = post_reroute(lead_client, htmx=True)
    reroute = Reroute.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert f'hx-get="/reroutes/{reroute.pk}/"' in html and 'hx-trigger="every 1s"' in html
    assert "lead asked to move the queue of Sales-3" in html
    assert (reroute.status, reroute.source_id, reroute.target_id, reroute.note) == ("queued", SALES_3, SALES_4, "night")
    new_key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    assert new_key != str(reroute.idempotency_key)  # a fresh form for the next reroute


def test_it_redirects_a_plain_post_to_the_reroute_page(lead_client, sandbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = post_reroute(lead_client)
    assert response.status_code == 302
    assert response["Location"] == f"/reroutes/{Reroute.objects.get().pk}/"


def test_it_shows_form_errors_and_writes_nothing(lead_client, sandbox):
    response = post_reroute(lead_client, htmx=True, target=SALES_3)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Choose a target number different from the source number." in html
    assert f'value="{SALES_3}" selected' in html  # the choice survives the error
    assert Reroute.objects.count() == 0


def test_it_links_the_reroute_in_progress_for_a_busy_source(lead_client, sandbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        post_reroute(lead_client)
    active = Reroute.objects.get()
    html = post_reroute(lead_client, htmx=True, target=SALES_2).content.decode()
    assert f'<a href="/reroutes/{active.pk}/">reroute #{active.pk}</a> is queued' in html
    assert Reroute.objects.count() == 1


def test_it_answers_a_resubmitted_form_with_the_same_reroute(lead_client, sandbox, django_capture_on_commit_callbacks):
    key = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=False):
        first = post_reroute(lead_client, idempotency_key=key)
        second = post_reroute(lead_client, idempotency_key=key)
    assert first["Location"] == second["Location"] and Reroute.objects.count() == 1


def test_it_shows_the_source_queue_as_a_fragment(lead_client, sandbox):
    html = lead_client.get(f"/reroute/queue/?source={SALES_3}", **HTMX).content.decode()
    assert "<strong>37</strong> queued messages" in html and "pending 35, processing 2" in html
    empty = lead_client.get(f"/reroute/queue/?source={SALES_2}", **HTMX).content.decode()
    assert "Sales-2 has no queued messages" in empty
    bad = lead_client.get("/reroute/queue/?source=<script>", **HTMX).content.decode()
    assert "Choose a WhatsApp number from the list." in bad and "<script>" not in bad


def test_it_says_why_queue_stats_are_missing(lead_client, sandbox):
    lead_client.get("/reroute/")  # warm the device list
    sandbox.fault(route="queue_get", status=503, times=1)
    html = lead_client.get(f"/reroute/queue/?source={SALES_3}", **HTMX).content.decode()
    assert "SparkBot did not answer (503)." in html


def test_it_refreshes_the_device_list_keeping_the_choices(lead_client, sandbox):
    lead_client.get("/reroute/")
    sandbox.control("POST", f"/devices/{SALES_2}/remove")
    response = lead_client.post("/reroute/devices/", {"source": SALES_3, "target": SALES_4}, **HTMX)
    html = response.content.decode()
    assert html.startswith('\n<div id="device-selects">') or '<div id="device-selects">' in html[:80]
    assert SALES_2 not in html
    assert f'value="{SALES_3}" selected' in html and f'value="{SALES_4}" selected' in html
    assert lead_client.post("/reroute/devices/")["Location"] == "/reroute/"


def test_it_says_when_the_device_list_cannot_be_loaded(lead_client, sandbox):
    sandbox.fault(route="devices_list", status=401, times=1)
    response = lead_client.get("/reroute/")
    assert response.status_code == 503
    assert "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY." in response.content.decode()


def test_it_shows_a_reroute_page_with_its_timeline(lead_client, sandbox, lead, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        post_reroute(lead_client)
    reroute = Reroute.objects.get()
    page = lead_client.get(f"/reroutes/{reroute.pk}/")
    assert page.status_code == 200 and b"Waiting" not in page.content
    assert b"lead asked to move the queue of Sales-3" in page.content
    services.reroute_execute(reroute_id=reroute.pk)
    fragment = lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX)
    assert fragment.status_code == 286  # htmx stops polling: the reroute has ended
    assert b"Moved 37 messages from Sales-3 to Sales-4." in fragment.content
    assert b"hx-trigger" not in fragment.content


def test_it_keeps_polling_while_the_reroute_runs(lead_client, sandbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        post_reroute(lead_client)
    fragment = lead_client.get(f"/reroutes/{Reroute.objects.get().pk}/", **HTMX)
    assert fragment.status_code == 200 and b'hx-trigger="every 1s"' in fragment.content


def test_it_answers_404_for_an_unknown_reroute(lead_client):
    assert lead_client.get("/reroutes/424242/").status_code == 404


def test_it_refuses_other_methods(lead_client, sandbox):
    assert lead_client.delete("/reroute/").status_code == 405
    assert lead_client.get("/reroute/devices/").status_code == 405
    assert lead_client.post("/reroutes/1/").status_code == 405


def test_it_lets_anonymous_visitors_reach_only_sign_in(client):
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    assert client.get("/admin/login/").status_code == 200
    assert client.get("/admin/queues/reroute/")["Location"].startswith("/accounts/login/")
    assert client.post("/reroute/", {"source": SALES_3})["Location"].startswith("/accounts/login/")
    assert Reroute.objects.count() == 0


def test_it_refuses_another_users_request_key_with_409_and_shows_nothing_of_theirs(
        lead_client, sandbox, make_user, django_capture_on_commit_callbacks):
    from django.test import Client

    other = Client()
    other.force_login(make_user("other-lead", "Support lead"))
    key = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=False):
        theirs = post_reroute(other, idempotency_key=key, note="their secret note")
        response = post_reroute(lead_client, htmx=True, idempotency_key=key, source=SALES_2)
    assert theirs.status_code == 302
    assert response.status_code == 409
    html = response.content.decode()
    assert "This request key was already used for a different request." in html
    assert "their secret note" not in html and "/reroutes/" not in html
    assert Reroute.objects.count() == 1
