"""Sign-in (with django-axes throttling), sign-out, password change and CSRF, over HTTP."""

import json
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.test import Client

from queues.models import Reroute
from sparkbot_sandbox.seed import SALES_3, SALES_4

pytestmark = pytest.mark.django_db
PASSWORD = "lead-password-123"  # what conftest's users are given
WRONG = "not-the-password-42"
NEW_PASSWORD = "quiet-harbour-lantern-7291"



def sign_in(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def signed_in_as(client):
    return client.session.get("_auth_user_id")


def template_names(response):
    return [template.name for template in response.templates]


def new_reroute_data():
    return {"source": SALES_3, "target": SALES_4, "note": "csrf", "idempotency_key": str(uuid.uuid4())}


def test_it_shows_the_sign_in_page_in_the_apps_layout(client):
    response = client.get("/accounts/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert template_names(response)[:2] == ["registration/login.html", "base.html"]
    assert "<title>Sign in · SparkBot queue router</title>" in html and "<h1>Sign in</h1>" in html
    assert 'href="/static/queues/app.css"' in html and 'class="brand"' in html
    assert 'name="username"' in html and 'name="password"' in html and 'name="csrfmiddlewaretoken"' in html
    assert "<nav" not in html and "Sign out" not in html and "/accounts/password/" not in html
    assert "/admin/" not in html


def test_it_says_a_wrong_password_is_wrong_and_records_the_failure(client, lead):
    response = sign_in(client, "lead", WRONG)
    html = response.content.decode()
    assert response.status_code == 200 and "registration/login.html" in template_names(response)
    assert 'role="alert">Your username and password did not match. Please try again.</p>' in html
    assert signed_in_as(client) is None
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == ("lead", "127.0.0.1", 1)
    assert attempt.path_info == "/accounts/login/" and WRONG not in attempt.post_data


def test_it_locks_a_username_after_five_failures_even_with_the_right_password(client, lead):
    statuses = [sign_in(client, "lead", WRONG).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # the fifth failure already answers with the lockout
    response = sign_in(client, "lead", PASSWORD)
    html = response.content.decode()
    assert response.status_code == 429
    assert "registration/locked_out.html" in template_names(response) and "base.html" in template_names(response)
    assert "<h1>Too many failed sign-ins</h1>" in html and "<nav" not in html
    assert signed_in_as(client) is None
    assert client.get("/accounts/password/")["Location"].startswith("/accounts/login/")
    assert AccessAttempt.objects.get(username="lead").failures_since_start >= 5


def test_it_locks_only_that_username_from_that_address(client, lead, make_user, sandbox):
    make_user("lead2", "Support lead")
    for _ in range(5):
        sign_in(client, "lead", WRONG)
    other_user = sign_in(client, "lead2", "lead2-password-123")
    assert other_user.status_code == 302 and other_user["Location"] == "/reroute/"
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    same_user_other_address = sign_in(elsewhere, "lead", PASSWORD)
    assert same_user_other_address.status_code == 302 and signed_in_as(elsewhere) == str(lead.pk)


def shown_end(attempt_time: datetime, zone: str) -> str:
    """How the lockout page writes the end of a lockout that started counting at attempt_time: rounded up to
    the minute, in `zone`, with the zone named."""
    ends = attempt_time + timedelta(minutes=15)
    if ends.second or ends.microsecond:
        ends = ends.replace(second=0, microsecond=0) + timedelta(minutes=1)
    local = ends.astimezone(ZoneInfo(zone))
    return f"until {local:%H:%M} on {local.day} {local:%b %Y} ({zone} time)"


def test_it_says_when_the_lockout_ends_in_the_dashboards_time_zone(client, lead, settings):
    settings.TIME_ZONE = "America/New_York"
    for _ in range(5):
        response = sign_in(client, "lead", WRONG)
    assert response.status_code == 429
    attempt = AccessAttempt.objects.get(username="lead")
    html = response.content.decode()
    assert shown_end(attempt.attempt_time, "America/New_York") in html
    assert "this account" in html and "any account" not in html
    assert 880 <= int(response["Retry-After"]) <= 900


def test_it_locks_an_address_that_tries_passwords_against_many_usernames(client, lead):
    statuses = [sign_in(client, f"user-{number}", WRONG).status_code for number in range(20)]
    assert statuses == [200] * 19 + [429]  # four tries per username would each have been allowed
    locked = sign_in(client, "lead", PASSWORD)  # a real account, the right password, the same address
    html = locked.content.decode()
    assert locked.status_code == 429 and signed_in_as(client) is None
    attempts = list(AccessAttempt.objects.order_by("attempt_time"))
    assert len(attempts) == 21  # a try while locked counts too, and moves the end on:
    assert "any account" in html and shown_end(attempts[1].attempt_time, "UTC") in html  # the oldest of 20
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert sign_in(elsewhere, "lead", PASSWORD)["Location"] == "/reroute/"


def test_it_keeps_the_address_count_when_one_username_signs_in(client, lead):
    for number in range(15):
        sign_in(client, f"user-{number}", WRONG)
    assert sign_in(client, "lead", PASSWORD)["Location"] == "/reroute/"  # resets lead's count, not the address's
    client.post("/accounts/logout/")
    statuses = [sign_in(client, f"other-{number}", WRONG).status_code for number in range(5)]
    assert statuses == [200] * 4 + [429]


def test_it_counts_the_address_the_proxy_forwards_when_told_to_trust_it(client, lead, settings):
    settings.TRUST_X_FORWARDED_FOR = True
    sign_in(client, "lead", WRONG, REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9")
    assert AccessAttempt.objects.get().ip_address == "203.0.113.9"  # what the proxy saw, not what the client wrote


def test_it_counts_the_connecting_address_unless_told_to_trust_a_proxy(client, lead):
    sign_in(client, "lead", WRONG, REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert AccessAttempt.objects.get().ip_address == "172.18.0.5"


def test_it_signs_in_and_goes_to_the_route_page(client, lead, sandbox):
    for _ in range(3):
        sign_in(client, "lead", WRONG)
    response = sign_in(client, "lead", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/reroute/"
    assert signed_in_as(client) == str(lead.pk)
    assert not AccessAttempt.objects.filter(username="lead").exists()  # success resets the lockout count...
    assert AccessFailureLog.objects.filter(username="lead").count() == 3  # ...but the failures stay on record
    page = client.get("/reroute/")
    assert page.status_code == 200 and b"Sign out" in page.content


def test_it_follows_next_only_within_the_site(client, lead):
    response = client.post("/accounts/login/", {"username": "lead", "password": PASSWORD,
                                                "next": "/accounts/password/"})
    assert response["Location"] == "/accounts/password/"
    offsite = client.post("/accounts/login/", {"username": "lead", "password": PASSWORD,
                                               "next": "https://evil.example/steal"})
    assert offsite["Location"] == "/reroute/"


def test_it_signs_out_by_post_and_refuses_get(client, lead):
    client.force_login(lead)
    refused = client.get("/accounts/logout/")
    assert refused.status_code == 405 and signed_in_as(client) == str(lead.pk)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert signed_in_as(client) is None
    assert client.get("/accounts/password/")["Location"].startswith("/accounts/login/")


def test_it_changes_the_password_only_with_the_old_one(client, lead):
    client.force_login(lead)
    page = client.get("/accounts/password/")
    assert page.status_code == 200 and b"<h1>Change your password</h1>" in page.content
    change = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    refused = client.post("/accounts/password/", {"old_password": WRONG, **change})
    assert refused.status_code == 200 and b"Your old password was entered incorrectly" in refused.content
    lead.refresh_from_db()
    assert lead.check_password(PASSWORD)
    done = client.post("/accounts/password/", {"old_password": PASSWORD, **change})
    assert done.status_code == 302 and done["Location"] == "/accounts/password/done/"
    confirmation = client.get("/accounts/password/done/")  # this session survives the change
    assert confirmation.status_code == 200 and b"Your new password is in use." in confirmation.content
    lead.refresh_from_db()
    assert lead.check_password(NEW_PASSWORD) and not lead.check_password(PASSWORD)
    fresh = Client()
    assert sign_in(fresh, "lead", PASSWORD).status_code == 200 and signed_in_as(fresh) is None
    assert sign_in(fresh, "lead", NEW_PASSWORD)["Location"] == "/reroute/"


def test_it_refuses_a_weak_new_password(client, lead):
    client.force_login(lead)
    response = client.post("/accounts/password/", {"old_password": PASSWORD, "new_password1": "12345678",
                                                   "new_password2": "12345678"})
    assert response.status_code == 200 and b"This password is too common." in response.content
    lead.refresh_from_db()
    assert lead.check_password(PASSWORD)


def test_it_refuses_a_post_without_the_csrf_token(lead, sandbox):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    assert client.get("/reroute/").status_code == 200  # the page sets the CSRF cookie
    plain = client.post("/reroute/", new_reroute_data())
    htmx = client.post("/reroute/", new_reroute_data(), HTTP_HX_REQUEST="true")
    assert (plain.status_code, htmx.status_code) == (403, 403)
    assert Reroute.objects.count() == 0


def test_it_accepts_the_token_htmx_sends_from_the_body(lead, sandbox, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    html = client.get("/reroute/").content.decode()
    body = re.search(r"<body hx-headers='(\{[^']*\})'>", html)
    assert body, "the <body> must carry hx-headers with the CSRF token"
    headers = json.loads(body.group(1))
    assert list(headers) == ["X-CSRFToken"] and re.fullmatch(r"[A-Za-z0-9]{64}", headers["X-CSRFToken"])
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/reroute/", new_reroute_data(), HTTP_HX_REQUEST="true",
                               HTTP_X_CSRFTOKEN=headers["X-CSRFToken"])
    assert response.status_code == 200
    assert Reroute.objects.get().requested_by == lead


def test_it_puts_the_csrf_token_on_every_pages_body(client, lead):
    pages = {"/accounts/login/": None, "/accounts/password/": lead}
    for url, user in pages.items():
        if user:
            client.force_login(user)
        html = client.get(url).content.decode()
        assert re.search(r"""<body hx-headers='\{"X-CSRFToken": "[A-Za-z0-9]{64}"\}'>""", html), url


def test_it_refuses_sign_in_and_sign_out_without_the_csrf_token(lead):
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    assert sign_in(client, "lead", PASSWORD).status_code == 403 and signed_in_as(client) is None
    client.force_login(lead)
    assert client.post("/accounts/logout/").status_code == 403 and signed_in_as(client) == str(lead.pk)
