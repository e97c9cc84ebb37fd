"""The API tokens page: make (shown once), list, revoke; admins see and revoke anyone's. And the lifecycle
through the API: a token works at once, and a revoked token or owner is refused at once."""

import re

import pytest

from queues.models import ApiToken

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]
TOKEN = re.compile(r"sbd_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def make_token(client, name="n8n night shift", expires_in="") -> str:
    response = client.post("/account/tokens/", {"name": name, "expires_in": expires_in})
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]
    return TOKEN.search(response.content.decode()).group(0)


def api_get(client, token, path="/api/v1/numbers"):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_it_shows_a_new_token_once_and_never_again(lead_client):
    token = make_token(lead_client)
    page = lead_client.get("/account/tokens/").content.decode()
    assert token not in page and "n8n night shift" in page and token[:12] + "…" in page


def test_it_lets_a_token_act_as_its_owner_at_once_and_refuses_it_once_revoked(lead_client, client):
    token = make_token(lead_client)
    from django.test import Client

    script = Client()
    assert api_get(script, token).status_code == 200
    assert ApiToken.objects.get().last_used_at is not None
    response = lead_client.post(f"/account/tokens/{ApiToken.objects.get().pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/account/tokens/"
    refused = api_get(script, token)
    assert refused.status_code == 401 and refused["Content-Type"] == "application/problem+json"
    assert "revoked" in refused.json()["detail"]


def test_it_refuses_the_token_of_a_user_who_may_no_longer_sign_in(lead_client, lead):
    from django.test import Client

    token = make_token(lead_client)
    lead.is_active = False
    lead.save()
    assert api_get(Client(), token).status_code == 401


def test_it_carries_exactly_its_owners_permissions(lead_client, lead):
    from django.test import Client

    token = make_token(lead_client)
    script = Client()
    assert api_get(script, token, "/api/v1/reroutes").status_code == 403  # a lead reads no history
    from django.contrib.auth.models import Group

    lead.groups.add(Group.objects.get(name="Shift manager"))
    assert api_get(script, token, "/api/v1/reroutes").status_code == 200  # the role's permission, at once


def test_it_sets_an_expiry_at_the_end_of_the_last_day(lead_client):
    make_token(lead_client, expires_in="30")
    token = ApiToken.objects.get()
    from django.utils import timezone

    assert (token.expires_at.date() - timezone.localdate()).days == 30


def test_it_hides_other_users_tokens_but_lets_admins_see_and_revoke_them(lead_client, make_user, client):
    make_token(lead_client, name="lead script")
    token = ApiToken.objects.get()
    manager = make_user("manager", "Shift manager")
    client.force_login(manager)
    assert "lead script" not in client.get("/account/tokens/").content.decode()
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    assert client.get("/account/tokens/all/").status_code == 403
    client.force_login(make_user("admin", "Admin"))
    page = client.get("/account/tokens/all/").content.decode()
    assert "lead script" in page and "lead" in page
    response = client.post(f"/account/tokens/{token.pk}/revoke/")
    assert response["Location"] == "/account/tokens/all/"
    token.refresh_from_db()
    assert token.revoked_by_username == "admin"
    assert "revoked" in lead_client.get("/account/tokens/").content.decode()


def test_it_asks_for_a_name(lead_client):
    response = lead_client.post("/account/tokens/", {"name": ""})
    assert response.status_code == 200 and not TOKEN.search(response.content.decode())
    assert ApiToken.objects.count() == 0
