"""Personal API tokens as a service: made, found, used, revoked; only a hash is kept."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from queues import tokens
from queues.models import ApiToken

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def test_it_keeps_only_a_hash_and_a_visible_prefix(lead):
    made = tokens.token_create(owner=lead, name="n8n")
    assert made.secret.startswith(made.token.prefix + "_") and len(made.secret) > 50
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM queues_apitoken")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert made.secret not in stored and made.secret.split("_")[-1] not in stored
    assert made.token.prefix in stored


def test_it_finds_the_owner_of_a_live_token_and_notes_when_it_was_used(lead):
    made = tokens.token_create(owner=lead, name="n8n")
    found = tokens.token_authenticate(raw=made.secret)
    assert found.owner == lead
    assert ApiToken.objects.get().last_used_at is not None


def test_it_writes_last_used_at_most_once_a_minute(lead, django_assert_num_queries):
    made = tokens.token_create(owner=lead, name="n8n")
    tokens.token_authenticate(raw=made.secret)
    with django_assert_num_queries(1):  # the lookup only; no write within the minute
        tokens.token_authenticate(raw=made.secret)
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    with django_assert_num_queries(2):
        tokens.token_authenticate(raw=made.secret)


@pytest.mark.parametrize("spoil", ["revoked", "expired", "owner inactive", "owner deleted", "wrong", "other form"])
def test_it_refuses_a_token_that_is_no_longer_good(lead, manager, spoil):
    made = tokens.token_create(owner=lead, name="n8n")
    raw = made.secret
    if spoil == "revoked":
        assert tokens.token_revoke(token=made.token, by=manager)
    elif spoil == "expired":
        ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif spoil == "owner inactive":
        lead.is_active = False
        lead.save()
    elif spoil == "owner deleted":
        lead.delete()
    elif spoil == "wrong":
        raw = raw[:-2] + ("AA" if not raw.endswith("AA") else "BB")
    else:
        raw = raw.removeprefix("sbd_")
    assert tokens.token_authenticate(raw=raw) is None


def test_it_revokes_once_and_says_who(lead, admin_user):
    made = tokens.token_create(owner=lead, name="n8n")
    assert tokens.token_revoke(token=made.token, by=admin_user) is True
    assert tokens.token_revoke(token=made.token, by=lead) is False
    made.token.refresh_from_db()
    assert made.token.revoked_by_username == "admin" and made.token.is_revoked
