"""The route page, its htmx fragments and the reroute page, through Django's test client."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from queues import devices, services
from queues.models import Reroute
from sparkbot_sandbox.seed import HTML_ALIAS, OFFLINE_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4, SEED_DEVICES
from tests.support import celery_publishes_to

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def post_reroute(client, *, htmx=False, **overrides):
    data = {"source": SALES_3, "target": SALES_4, "note": "night", "idempotency_key": str(uuid.uuid4()), **overrides}
    with_headers = HTMX if htmx else {}
    return client.post(reverse("queues:reroute"), data, **with_headers)


@pytest.fixture
def posted_reroute(lead_client, sandbox, django_capture_on_commit_callbacks):
    """A reroute the lead asked for on the route page, not yet run (its task is never published)."""
    with django_capture_on_commit_callbacks(execute=False):
        post_reroute(lead_client)
    return Reroute.objects.get()


def test_it_sends_anonymous_visitors_to_sign_in(client, sandbox):
    for url in ["/", "/reroute/", "/reroute/preview/?source=" + SALES_3, "/reroutes/1/"]:
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


def test_it_refreshes_the_device_list_keeping_the_choices(lead_client, sandbox):
    lead_client.get("/reroute/")
    sandbox.control("POST", f"/devices/{SALES_2}/remove")
    response = lead_client.post("/reroute/devices/", {"source": SALES_3, "target": SALES_4}, **HTMX)
    html = response.content.decode()
    assert '<div id="device-selects"' in html[:80]
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


def test_it_tells_the_page_when_the_reroute_has_ended(lead_client, posted_reroute):
    reroute = posted_reroute
    assert "HX-Trigger" not in lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX)
    services.reroute_execute(reroute_id=reroute.pk)
    ended = lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX)
    assert ended.status_code == 286 and json.loads(ended["HX-Trigger"]) == {"reroute-ended": {}}


def test_it_lists_the_last_reroutes_again_once_one_has_ended(lead_client, posted_reroute):
    reroute = posted_reroute
    page = lead_client.get("/reroute/").content.decode()
    section = re.search(r'<section id="recent-reroutes"[^>]*>', page).group(0)
    assert 'hx-get="/reroute/recent/"' in section and 'hx-trigger="reroute-ended from:body"' in section
    services.reroute_execute(reroute_id=reroute.pk)
    recent = lead_client.get("/reroute/recent/", **HTMX).content.decode()
    assert recent.lstrip().startswith('<section id="recent-reroutes"')
    assert f'<a href="/reroutes/{reroute.pk}/">#{reroute.pk}</a>' in recent
    assert "Moved 37 messages from Sales-3 to Sales-4." in recent and "In progress." not in recent


def test_its_page_brings_its_facts_up_to_date_once_it_has_ended(lead_client, posted_reroute):
    reroute = posted_reroute
    running = lead_client.get(f"/reroutes/{reroute.pk}/").content.decode()
    facts = re.search(r'<dl id="reroute-facts"[^>]*>', running).group(0)
    assert f'hx-get="/reroutes/{reroute.pk}/"' in facts and 'hx-trigger="reroute-ended from:body"' in facts
    services.reroute_execute(reroute_id=reroute.pk)
    ended = lead_client.get(f"/reroutes/{reroute.pk}/", HTTP_HX_TARGET="reroute-facts", **HTMX).content.decode()
    assert ended.lstrip().startswith('<dl id="reroute-facts" class="facts card">')  # nothing left to follow
    assert "<dt>Queue before</dt><dd>37; after: 0</dd>" in ended and "s in all" in ended


def test_it_says_so_when_no_worker_has_started_the_reroute_after_a_few_seconds(lead_client, posted_reroute):
    reroute = posted_reroute
    assert "No worker has started it yet" not in lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX).content.decode()
    reroute.created_at = timezone.now() - timedelta(seconds=12)
    reroute.save(update_fields=["created_at"])
    waiting = lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX).content.decode()
    assert ("No worker has started it yet, 12 s after it was asked for: the task workers are busy with other "
            "work, or stopped. If it waits for minutes, tell an admin.") in waiting
    assert 'hx-trigger="every 1s"' in waiting  # and it goes on following it
    services.reroute_execute(reroute_id=reroute.pk)
    assert "No worker has started it yet" not in lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX).content.decode()


def test_it_does_not_blame_the_workers_for_a_reroute_the_task_queue_never_took(lead_client, sandbox,
                                                                              django_capture_on_commit_callbacks):
    from django.conf import settings

    celery_publishes_to("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        with django_capture_on_commit_callbacks(execute=True):
            post_reroute(lead_client)
    finally:
        celery_publishes_to(settings.CELERY_BROKER_URL)
    reroute = Reroute.objects.get()
    reroute.created_at = timezone.now() - timedelta(seconds=12)
    reroute.save(update_fields=["created_at"])
    waiting = lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX).content.decode()
    assert services.QUEUE_DOWN_MESSAGE in waiting and "No worker has started it yet" not in waiting


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


# Issue 13 (and issue 10, item 5): depths in the pickers, the preview, the lead's last reroutes, the fixes ----------


def form_of(html: str) -> str:
    return re.search(r'<form class="card" method="post" action="/reroute/".*?</form>', html, re.S).group(0)


def buttons_outside_noscript(html: str) -> list[str]:
    """The submit buttons a browser with JavaScript sees, in order (what Enter presses is the first)."""
    return re.findall(r"<button[^>]*>(.*?)</button>", re.sub(r"<noscript>.*?</noscript>", "", html, flags=re.S))


def read_every_queue(settings):
    from queues import monitor

    settings.MONITOR_CALLS_PER_MINUTE = 600
    assert monitor.monitor_cycle().ran


def test_it_shows_each_numbers_queue_depth_from_the_monitors_last_reading(lead_client, sandbox, settings):
    from django.utils import timezone

    from queues import monitor

    monitor.record_device_list(devices.device_list().devices, now=timezone.now())  # listed, not read yet
    html = lead_client.get("/reroute/").content.decode()
    assert "Sales-3 · +447700900003 · can deliver now</option>" in html  # not read yet: no depth
    read_every_queue(settings)
    html = lead_client.get("/reroute/").content.decode()
    assert "Sales-3 · +447700900003 · can deliver now · 37 queued</option>" in html
    assert "Sales-2 · +447700900002 · can deliver now · empty queue</option>" in html
    sandbox.set_queue(SALES_3, pending=200, processing=0, scheduled=0, status="pause")
    read_every_queue(settings)
    html = lead_client.get("/reroute/").content.decode()
    assert "Sales-3 · +447700900003 · can deliver now · 200 queued, paused</option>" in html


def test_it_chooses_the_source_given_in_the_address(lead_client, sandbox):
    html = lead_client.get(f"/reroute/?source={SALES_3}").content.decode()
    source = re.search(r'<select id="id_source".*?</select>', html, re.S).group(0)
    assert f'value="{SALES_3}" selected' in source and source.count(" selected") == 1
    assert f'hx-get="/reroute/preview/?source={SALES_3}" hx-trigger="load"' in html
    assert "selected" not in lead_client.get("/reroute/?source=<script>").content.decode().split("id_source")[1][:200]


def preview(client, **numbers) -> str:
    response = client.get("/reroute/preview/", numbers, **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def test_it_previews_both_numbers_before_the_move(lead_client, sandbox):
    html = preview(lead_client, source=SALES_3, target=SALES_4)
    assert "Before you reroute" in html and "<strong>37</strong> messages (pending 35, processing 2" in html
    assert "Sales-4</strong>" in html and "<strong>0</strong> messages" in html
    assert "No warnings: Sales-4 can deliver now." in html and 'class="warning' not in html
    only_source = preview(lead_client, source=SALES_3)
    assert "The queue of Sales-3" in only_source and "Sales-4" not in only_source
    assert preview(lead_client).strip() == ""
    assert "Choose a target number different from the source number." in preview(lead_client, source=SALES_3,
                                                                                    target=SALES_3)


def test_it_says_why_a_queue_is_missing_from_the_preview(lead_client, sandbox):
    lead_client.get("/reroute/")  # warm the device list
    sandbox.fault(route="queue_get", status=503, times=1)
    assert "SparkBot did not answer (503)." in preview(lead_client, source=SALES_3, target=SALES_4)


@pytest.mark.parametrize("arrange, numbers, warning", [
    (lambda box: None, {"target": OFFLINE_DEVICE},
     "Café Zürich — Kundendienst cannot deliver now (its WhatsApp session is offline): the messages would wait "
     "on it until it is back online."),
    (lambda box: box.set_queue(SALES_4, pending=150, processing=0, scheduled=0), {},
     "Sales-4 already holds 150 queued messages; the 37 from Sales-3 would wait behind them."),
    (lambda box: box.set_queue(SALES_3, status="pause"), {},
     "The queue of Sales-3 is paused (its status is “pause”): someone stopped its delivery on purpose."),
    (lambda box: box.set_queue(SALES_3, status="freeze"), {},
     "The queue of Sales-3 is frozen (its status is “freeze”)"),
    (lambda box: None, {"source": SALES_2}, "Sales-2 has no queued messages: a reroute would move nothing."),
])
def test_it_warns_in_plain_words_before_the_move(lead_client, sandbox, arrange, numbers, warning):
    arrange(sandbox)
    html = preview(lead_client, **{"source": SALES_3, "target": SALES_4, **numbers})
    assert warning.replace("“", "&ldquo;") in html or warning in html


def test_it_warns_when_the_target_is_itself_being_rerouted(lead_client, sandbox, lead,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        moving = services.reroute_request(source=devices.device_list().get(SALES_4),
                                          target=devices.device_list().get(SALES_1), note="", user=lead)
    html = preview(lead_client, source=SALES_3, target=SALES_4)
    assert (f"Sales-4 is itself being rerouted right now (reroute #{moving.pk} to Sales-1): messages moved to it "
            "may move on again.") in html
    assert f'<a href="/reroutes/{moving.pk}/">Reroute #{moving.pk}</a>' in html


def test_it_counts_many_messages_from_the_threshold_setting(lead_client, sandbox, settings):
    sandbox.set_queue(SALES_4, pending=30, processing=0, scheduled=0)
    assert "already holds" not in preview(lead_client, source=SALES_3, target=SALES_4)
    settings.REROUTE_WARN_TARGET_MESSAGES = 30
    assert "Sales-4 already holds 30 queued messages" in preview(lead_client, source=SALES_3, target=SALES_4)


def test_it_previews_before_rerouting_without_javascript(lead_client, sandbox):
    form = {"source": SALES_3, "target": OFFLINE_DEVICE, "note": "night", "idempotency_key": str(uuid.uuid4()),
            "preview": "1"}
    response = lead_client.post("/reroute/", form)
    html = response.content.decode()
    assert response.status_code == 200 and Reroute.objects.count() == 0
    assert "Before you reroute" in html and "cannot deliver now (its WhatsApp session is offline)" in html
    assert f'value="{SALES_3}" selected' in html and "night</textarea>" in html
    assert form["idempotency_key"] in html  # the same request key: confirming makes exactly this reroute
    assert buttons_outside_noscript(form_of(html))[0] == "Reroute"
    first_page = lead_client.get("/reroute/").content.decode()
    assert re.search(r'<noscript><button type="submit" name="preview"[^>]*>Preview the move</button></noscript>\s*'
                     r'<button type="submit" name="reroute"', first_page)


def test_it_lists_the_leads_own_last_20_reroutes_with_their_outcome(lead_client, sandbox, lead, make_user,
                                                                    django_capture_on_commit_callbacks):
    device_list = devices.device_list()
    other = make_user("other-lead", "Support lead")
    with django_capture_on_commit_callbacks(execute=False):
        mine = [services.reroute_request(source=device_list.get(SALES_2), target=device_list.get(SALES_4), note="",
                                         user=lead) for _ in range(1)]
        services.reroute_execute(reroute_id=mine[0].pk)  # Sales-2 is empty: succeeded, nothing moved
        for _ in range(21):
            reroute = services.reroute_request(source=device_list.get(SALES_2), target=device_list.get(SALES_4),
                                               note="", user=lead)
            services.reroute_execute(reroute_id=reroute.pk)
            mine.append(reroute)
        theirs = services.reroute_request(source=device_list.get(SALES_1), target=device_list.get(SALES_4), note="",
                                          user=other)
    html = lead_client.get("/reroute/").content.decode()
    recent = html.split("Your last reroutes")[1]
    listed = [int(pk) for pk in re.findall(r'<a href="/reroutes/(\d+)/">#', recent)]
    assert listed == [r.pk for r in reversed(mine)][:20] and theirs.pk not in listed
    assert "Sales-2 had no queued messages: nothing to move, nothing changed." in recent
    assert 'badge-succeeded">Succeeded' in recent


def test_it_disables_the_reroute_button_not_refresh_devices_while_posting(lead_client, sandbox):
    form = form_of(lead_client.get("/reroute/").content.decode())
    selector = re.search(r'hx-disabled-elt="find ([^"]+)"', form).group(1)
    assert selector == "button[name=reroute]"
    assert '<button type="submit" name="reroute" class="primary">Reroute</button>' in form
    assert 'name="reroute"' not in re.search(r"<button[^>]*>Refresh devices</button>", form).group(0)


def test_it_makes_reroute_the_forms_default_button(lead_client, sandbox):
    buttons = buttons_outside_noscript(form_of(lead_client.get("/reroute/").content.decode()))
    assert buttons == ["Reroute", "Refresh devices"]


def test_it_announces_only_the_outcome_sentence(lead_client, sandbox, django_capture_on_commit_callbacks):
    page = lead_client.get("/reroute/").content.decode()
    assert '<div id="reroute-announcer" class="visually-hidden" role="status"></div>' in page
    with django_capture_on_commit_callbacks(execute=False):
        post_reroute(lead_client)
    reroute = Reroute.objects.get()
    running = lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX).content.decode()
    assert "aria-live" not in running and "reroute-announcer" not in running  # no announcement every second
    services.reroute_execute(reroute_id=reroute.pk)
    ended = lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX).content.decode()
    announced = re.findall(r'<div hx-swap-oob="innerHTML:#reroute-announcer">(.*?)</div>', ended, re.S)
    assert announced == ["Moved 37 messages from Sales-3 to Sales-4."] and "aria-live" not in ended
    detail = lead_client.get(f"/reroutes/{reroute.pk}/").content.decode()
    assert 'id="reroute-announcer"' in detail and "hx-swap-oob" not in detail


def test_it_moves_the_focus_to_the_result(lead_client, sandbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        started = post_reroute(lead_client, htmx=True).content.decode()
    reroute = Reroute.objects.get()
    section = re.search(rf'<section id="reroute-{reroute.pk}"[^>]*>', started).group(0)
    assert 'tabindex="-1"' in section and " autofocus" in section
    polled = lead_client.get(f"/reroutes/{reroute.pk}/", **HTMX).content.decode()
    section = re.search(rf'<section id="reroute-{reroute.pk}"[^>]*>', polled).group(0)
    assert 'tabindex="-1"' in section and "autofocus" not in section  # htmx keeps the focus on it by its id


def test_it_refreshes_a_running_reroute_page_without_javascript(lead_client, posted_reroute):
    reroute = posted_reroute
    running = lead_client.get(f"/reroutes/{reroute.pk}/").content.decode()
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in running.split("</head>")[0]
    assert f'<a href="/reroutes/{reroute.pk}/">Reload now</a>' in running
    services.reroute_execute(reroute_id=reroute.pk)
    ended = lead_client.get(f"/reroutes/{reroute.pk}/").content.decode()
    assert 'http-equiv="refresh"' not in ended and "Reload now" not in ended


def test_it_has_a_favicon_on_every_page(client, lead_client, sandbox):
    from django.contrib.staticfiles import finders

    html = lead_client.get("/reroute/").content.decode()
    assert '<link rel="icon" href="/static/queues/favicon.svg" type="image/svg+xml">' in html
    assert finders.find("queues/favicon.svg")
    for visitor in (client, lead_client):
        response = visitor.get("/favicon.ico")
        assert response.status_code == 302 and response["Location"] == "/static/queues/favicon.svg"


def test_it_labels_times_with_their_time_zone(lead_client, sandbox, settings, django_capture_on_commit_callbacks):
    settings.TIME_ZONE = "Asia/Tokyo"
    with django_capture_on_commit_callbacks(execute=False):
        post_reroute(lead_client)
    reroute = Reroute.objects.get()
    services.reroute_execute(reroute_id=reroute.pk)
    page = lead_client.get("/reroute/").content.decode()
    assert re.search(r"loaded at <time datetime=\"[^\"]+\">\d\d:\d\d:\d\d JST</time>", page)
    assert re.search(r"\d\d:\d\d JST</time>: Sales-3 → Sales-4", page)  # the lead's last reroutes
    detail = lead_client.get(f"/reroutes/{reroute.pk}/").content.decode()
    assert re.search(r"lead, <time datetime=\"[^\"]+\">\d+ \w+ \d{4} \d\d:\d\d:\d\d JST</time>", detail)
    assert re.search(r"started <time[^>]*>\d\d:\d\d:\d\d JST</time>", detail)
    assert re.findall(r'<time datetime="[^"]+" title="[^"]+">(\d\d:\d\d:\d\d \w+)</time>', detail)[0].endswith(" JST")


@pytest.mark.parametrize("data", [
    {"source": "\x00", "target": SALES_4, "idempotency_key": "x"},
    {"source": [SALES_3, "nope"], "target": "x" * 10000, "preview": "1"},
    {"source": SALES_3, "target": SALES_4, "note": "x" * 100_000, "idempotency_key": str(uuid.uuid4())},
    {"idempotency_key": "\x00", "preview": ["1", "2"]},
    {},
])
def test_it_explains_a_damaged_route_form_instead_of_failing(lead_client, sandbox, data):
    for headers in ({}, HTMX):
        response = lead_client.post("/reroute/", data, **headers)
        assert response.status_code == 200 and 'class="errorlist' in response.content.decode()
    assert Reroute.objects.count() == 0
    for query in ("?source=%00", "?source=" + "a" * 5000 + "&target=%ff", "?target=" + SALES_3):
        assert lead_client.get("/reroute/preview/" + query, **HTMX).status_code == 200
        assert lead_client.get("/reroute/" + query).status_code == 200
