"""The API's reroutes: start one (idempotent, 202 + Location, 409, 422), read one, list them; its errors."""

import json

import pytest
from django.core.cache import cache
from django.test import Client

from queues import devices, history, services, tokens
from queues.models import Reroute
from sparkbot_sandbox.seed import (
    DISABLED_DEVICE, READY_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4, SCHEDULED_DEVICE,
)

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]
PROBLEM = "application/problem+json"


@pytest.fixture
def call(lead, django_capture_on_commit_callbacks):
    """call(method, path, body=None, user=lead, key=None) -> the response, with a token of that user; the
    reroutes stay queued (no task is published)."""
    made = {}

    def send(method, path, body=None, *, user=lead, key=None, **headers):
        if user.pk not in made:
            made[user.pk] = tokens.token_create(owner=user, name="test").secret
        headers["HTTP_AUTHORIZATION"] = f"Bearer {made[user.pk]}"
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        data = {"data": json.dumps(body), "content_type": "application/json"} if body is not None else {}
        with django_capture_on_commit_callbacks(execute=False):
            return Client().generic(method, path, **data, **headers)

    return send


def test_it_starts_a_reroute_named_by_alias_and_phone_with_202_and_location(call, sandbox, lead):
    response = call("POST", "/api/v1/reroutes", {"source": "sales-3", "target": "+44 7700 900004", "note": "night"})
    reroute = Reroute.objects.get()
    assert response.status_code == 202
    assert response["Location"] == f"http://testserver/api/v1/reroutes/{reroute.pk}"
    assert (reroute.source_id, reroute.target_id, reroute.note) == (SALES_3, SALES_4, "night")
    assert reroute.origin == "api" and reroute.requested_by == lead and reroute.requested_by_username == "lead"
    body = response.json()
    assert body["status"] == "queued" and body["result"] == {
        "ok": False, "done": False, "state": "queued", "messages_moved": None, "error_code": "",
        "message": "lead asked to move the queue of Sales-3 (+447700900003) to Sales-4 (+447700900004)."}


def test_it_answers_the_same_key_and_body_with_the_same_reroute(call, sandbox):
    body = {"source": SALES_3, "target": SALES_4}
    first = call("POST", "/api/v1/reroutes", body, key="n8n-run-81")
    again = call("POST", "/api/v1/reroutes", body, key="n8n-run-81")
    assert first.status_code == again.status_code == 202
    assert first["Location"] == again["Location"] and Reroute.objects.count() == 1


def test_it_answers_a_retry_with_the_reroute_it_made_though_a_number_has_changed_since(call, sandbox):
    body = {"source": "sales-3", "target": "+44 7700 900004", "note": "night "}
    first = call("POST", "/api/v1/reroutes", body, key="n8n-run-82")
    sandbox.control("POST", f"/devices/{SALES_4}", {"status": "disabled"})
    devices.device_list_forget()
    again = call("POST", "/api/v1/reroutes", body, key="n8n-run-82")
    assert again.status_code == 202, again.json()
    assert again["Location"] == first["Location"] and Reroute.objects.count() == 1
    sandbox.fault(route="devices_list", status=500, times=10)
    devices.device_list_forget()
    named_otherwise = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": "Sales-4", "note": "night"},
                           key="n8n-run-82")
    assert named_otherwise.status_code == 202 and named_otherwise["Location"] == first["Location"]
    other_target = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": "Sales-1", "note": "night"},
                        key="n8n-run-82")
    assert other_target.status_code == 409 and Reroute.objects.count() == 1


def test_it_refuses_the_same_key_with_another_body(call, sandbox):
    call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4}, key="k1")
    response = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4, "note": "changed"}, key="k1")
    assert response.status_code == 409 and response["Content-Type"] == PROBLEM
    assert response.json()["type"] == "urn:sparkbot-dash:problem:idempotency-key-reused"
    assert Reroute.objects.count() == 1


def test_it_keeps_two_users_equal_keys_apart(call, sandbox, make_user):
    other = make_user("other-lead", "Support lead")
    call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4}, key="same")
    response = call("POST", "/api/v1/reroutes", {"source": SALES_1, "target": SALES_2}, key="same", user=other)
    assert response.status_code == 202 and Reroute.objects.count() == 2


def test_it_names_the_active_reroute_when_the_source_is_busy(call, sandbox):
    first = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4}).json()
    response = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_1})
    problem = response.json()
    assert response.status_code == 409 and problem["type"] == "urn:sparkbot-dash:problem:source-busy"
    assert problem["detail"] == (
        f"Sales-3 is already being rerouted: reroute #{first['id']} is queued. Wait for it to end.")
    assert problem["active_reroute"] == {"id": first["id"], "url": first["url"], "status": "queued"}


def test_it_refuses_unknown_and_ambiguous_numbers_and_lists_the_candidates(call, sandbox):
    sandbox.control("POST", f"/devices/{SALES_2}", {"alias": "Sales-1"})
    devices.device_list_forget()
    response = call("POST", "/api/v1/reroutes", {"source": "Sales-1", "target": "Sales"})
    problem = response.json()
    assert response.status_code == 422 and response["Content-Type"] == PROBLEM
    source, target = problem["errors"]
    assert source["field"] == "source" and source["message"].startswith("“Sales-1” names 2 numbers")
    assert {c["id"] for c in source["candidates"]} == {SALES_1, SALES_2}
    assert target["field"] == "target"
    assert target["message"] == "No number is called “Sales”; did you mean one of these?"
    assert {c["alias"] for c in target["candidates"]} >= {"Sales-1", "Sales-3", "Sales-4"}
    assert Reroute.objects.count() == 0


@pytest.mark.parametrize("body, field, message", [
    ({"source": SALES_3, "target": "Sales-3"}, "target", "Choose a target number different from the source number."),
    ({"source": SALES_3, "target": DISABLED_DEVICE}, "target", "cannot receive a queue"),
    ({"source": SALES_3, "target": SALES_4, "note": "x" * 501}, "note", "at most 500 characters"),
    ({"source": SALES_3}, "target", "Field required"),
    ({"source": "", "target": SALES_4}, "source", "at least 1 character"),
])
def test_it_answers_422_with_the_field_at_fault(call, sandbox, body, field, message):
    response = call("POST", "/api/v1/reroutes", body)
    errors = response.json()["errors"]
    assert response.status_code == 422 and errors[0]["field"] == field and message in errors[0]["message"]


def test_it_answers_400_for_a_body_that_is_not_json(call, sandbox, lead):
    raw = tokens.token_create(owner=lead, name="x").secret
    response = Client().post("/api/v1/reroutes", "source=Sales-3", content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    empty = Client().post("/api/v1/reroutes", "", content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert empty.status_code == 400 and empty.json()["type"] == "urn:sparkbot-dash:problem:unreadable"
    assert empty.json()["detail"] == "The request has no body: send a JSON object."


def test_it_reads_an_ended_reroute_with_counts_timeline_and_a_flat_result(call, sandbox):
    pk = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4}).json()["id"]
    services.reroute_execute(reroute_id=pk)
    body = call("GET", f"/api/v1/reroutes/{pk}").json()
    assert body["result"] == {"ok": True, "done": True, "state": "succeeded", "messages_moved": 37,
                              "error_code": "", "message": "Moved 37 messages from Sales-3 to Sales-4."}
    assert body["counts"]["before"] == {"status": "active", "total": 37, "pending": 35, "processing": 2,
                                        "scheduled": 0}
    assert body["counts"]["after"]["total"] == 0
    assert [e["kind"] for e in body["timeline"]][:2] == ["requested", "started"] and body["attempts"] == 1


def test_it_reads_a_failed_reroute_with_its_error_code(call, sandbox):
    pk = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4}).json()["id"]
    sandbox.fault(route="*", status=401, times=5)
    services.reroute_execute(reroute_id=pk)
    result = call("GET", f"/api/v1/reroutes/{pk}").json()["result"]
    assert result == {"ok": False, "done": True, "state": "failed", "messages_moved": None,
                      "error_code": "unauthorized",
                      "message": "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY."}


def test_it_lets_a_lead_read_only_their_own_reroutes(call, sandbox, make_user):
    other = make_user("other-lead", "Support lead")
    pk = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4}, user=other).json()["id"]
    response = call("GET", f"/api/v1/reroutes/{pk}")
    assert response.status_code == 403 and response.json()["detail"] == (
        "Your account may read only the reroutes it asked for.")
    assert call("GET", "/api/v1/reroutes/999999").status_code == 404


def test_it_lists_the_history_with_its_filters_and_cursor_links(call, sandbox, manager, monkeypatch):
    monkeypatch.setattr(history, "PAGE_SIZE", 2)
    for source in (SALES_1, SALES_2, SALES_3, READY_DEVICE, SCHEDULED_DEVICE):
        call("POST", "/api/v1/reroutes", {"source": source, "target": SALES_4, "note": "night shift"})
    ids = sorted(Reroute.objects.values_list("pk", flat=True), reverse=True)
    first = call("GET", "/api/v1/reroutes?q=night&origin=api", user=manager).json()
    assert [r["id"] for r in first["items"]] == ids[:2] and first["previous"] is None
    assert first["next"] == f"http://testserver/api/v1/reroutes?origin=api&q=night&before={ids[1]}"
    second = call("GET", first["next"].removeprefix("http://testserver"), user=manager).json()
    assert [r["id"] for r in second["items"]] == ids[2:4]
    back = call("GET", second["previous"].removeprefix("http://testserver"), user=manager).json()
    assert [r["id"] for r in back["items"]] == ids[:2]
    only = call("GET", f"/api/v1/reroutes?device={SALES_2}", user=manager).json()
    assert [r["source"]["id"] for r in only["items"]] == [SALES_2]


@pytest.mark.parametrize("query, field", [("q=ab", "q"), ("status=lost", "status"), ("device=xyz", "device"),
                                          ("date_from=2026-02-30", "date_from"), ("before=0", "before")])
def test_it_answers_422_for_filters_that_are_not_valid(call, sandbox, manager, query, field):
    response = call("GET", f"/api/v1/reroutes?{query}", user=manager)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


def test_it_checks_csrf_on_browser_session_calls_but_not_on_token_calls(sandbox, lead,
                                                                        django_capture_on_commit_callbacks):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lead)
    body = json.dumps({"source": SALES_3, "target": SALES_4})
    with django_capture_on_commit_callbacks(execute=False):
        refused = browser.post("/api/v1/reroutes", body, content_type="application/json")
        assert refused.status_code == 403 and refused.json()["type"] == "urn:sparkbot-dash:problem:csrf-failed"
        browser.get("/reroute/")  # sets the CSRF cookie, as the page would
        token = browser.cookies["csrftoken"].value
        accepted = browser.post("/api/v1/reroutes", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
        assert accepted.status_code == 202
        script = Client(enforce_csrf_checks=True)
        raw = tokens.token_create(owner=lead, name="x").secret
        by_token = script.post("/api/v1/reroutes", json.dumps({"source": SALES_1, "target": SALES_2}),
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert by_token.status_code == 202


def test_it_decides_by_the_token_alone_when_one_is_sent(sandbox, lead):
    browser = Client()
    browser.force_login(lead)
    response = browser.get("/api/v1/numbers", HTTP_AUTHORIZATION="Bearer sbd_00000000_revoked-or-made-up")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert browser.get("/api/v1/numbers", HTTP_AUTHORIZATION="Basic bGVhZDpsZWFk").status_code == 401


def test_it_throttles_each_token_with_429_and_retry_after(sandbox, lead, settings):
    cache.clear()
    settings.API_TOKEN_REQUESTS_PER_MINUTE = 3
    first, second = (tokens.token_create(owner=lead, name=n).secret for n in ("a", "b"))
    statuses = [Client().get("/api/v1/numbers", HTTP_AUTHORIZATION=f"Bearer {first}").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = Client().get("/api/v1/numbers", HTTP_AUTHORIZATION=f"Bearer {first}")
    assert limited["Content-Type"] == PROBLEM and 1 <= int(limited["Retry-After"]) <= 60
    assert "at most 3 a minute" in limited.json()["detail"]
    assert Client().get("/api/v1/numbers", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200


def test_it_answers_problem_details_for_every_error_never_html(call, sandbox, monkeypatch):
    for method, path, status in [("GET", "/api/v1/nowhere", 404), ("GET", "/api/v1/reroutes/x", 404),
                                 ("PATCH", "/api/v1/numbers", 405), ("GET", "/api/v1/reroutes/0", 422)]:
        response = call(method, path, HTTP_ACCEPT="text/html")
        assert response.status_code == status and response["Content-Type"] == PROBLEM, path
        assert response.json()["status"] == status and response.json()["instance"] == path
    assert call("PATCH", "/api/v1/numbers")["Allow"] == "GET"

    def crash(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(history, "reroute_story", crash)
    pk = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4}).status_code
    assert pk == 500
    crashed = call("GET", f"/api/v1/reroutes/{Reroute.objects.get().pk}")
    assert crashed.status_code == 500 and crashed["Content-Type"] == PROBLEM
    assert "a bug" not in crashed.content.decode()


def test_it_names_the_kind_of_problem_the_table_in_the_docs_gives(call, sandbox, settings):
    for path in ("/api/v1/nowhere", "/api/v1/reroutes/x"):
        assert call("GET", path).json()["type"] == "urn:sparkbot-dash:problem:not-found", path
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4, "note": "x" * 20_000})
    assert response.status_code == 413 and response["Content-Type"] == PROBLEM
    assert response.json()["type"] == "urn:sparkbot-dash:problem:too-large"
    assert response.json()["detail"] == "The request body is larger than the 10000 bytes the dashboard reads."
    assert Reroute.objects.count() == 0


def test_it_takes_a_note_the_form_takes_spaces_around_it_and_all(call, sandbox):
    response = call("POST", "/api/v1/reroutes", {"source": SALES_3, "target": SALES_4, "note": " " + "x" * 500 + "  "})
    assert response.status_code == 202, response.json()
    assert Reroute.objects.get().note == "x" * 500
