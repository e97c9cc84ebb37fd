"""The audit chain, and `manage.py verify_audit_log` catching rows altered behind the app's back."""

import hashlib

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from queues import audit, devices, services
from queues.models import Reroute, RerouteEvent
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4
from tests.support import tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(sandbox, lead, django_capture_on_commit_callbacks):
    """Four ended reroutes, in the order they ended."""
    device_list = devices.device_list()
    ended = []
    for source, target in [(SALES_3, SALES_4), (SALES_1, SALES_2), (SALES_4, SALES_3), (SALES_2, SALES_1)]:
        with django_capture_on_commit_callbacks(execute=False):
            reroute = services.reroute_request(source=device_list.get(source), target=device_list.get(target),
                                               note="shift change", user=lead)
        services.reroute_execute(reroute_id=reroute.pk)
        reroute.refresh_from_db()
        ended.append(reroute)
    return ended


def verify() -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit_log", stdout=out)
    return out.getvalue()


raw = tamper


def plain_sql(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="triggers are PostgreSQL's")


def test_it_chains_every_ended_reroute_in_the_order_they_ended(history):
    assert [r.chain_seq for r in history] == [1, 2, 3, 4]
    assert all(len(r.chain_hash) == 64 for r in history)
    assert len({r.chain_hash for r in history}) == 4
    assert verify() == "The audit log is intact: 4 ended reroutes checked.\n"


def test_it_leaves_running_reroutes_out_of_the_chain(history, sandbox, lead, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        waiting = services.reroute_request(source=devices.device_list().get(SALES_3),
                                           target=devices.device_list().get(SALES_1), note="", user=lead)
    assert waiting.chain_seq is None
    assert "4 ended reroutes checked" in verify()


def test_it_names_a_reroute_whose_row_was_altered(history):
    raw("UPDATE queues_reroute SET messages_moved = 999 WHERE id = %s", [history[1].pk])
    with pytest.raises(CommandError, match=rf"after 1 intact records\. Reroute #{history[1].pk} \(chain position 2\) "
                                           "does not match its hash"):
        verify()


def test_it_names_a_reroute_whose_timeline_was_altered(history):
    event = RerouteEvent.objects.filter(reroute=history[2]).first()
    raw("UPDATE queues_rerouteevent SET message = %s WHERE id = %s", ["nothing happened", event.pk])
    with pytest.raises(CommandError, match=rf"Reroute #{history[2].pk} \(chain position 3\) does not match"):
        verify()


def test_it_names_the_record_after_one_that_was_removed(history):
    raw("DELETE FROM queues_rerouteevent WHERE reroute_id = %s", [history[1].pk])
    raw("DELETE FROM queues_reroute WHERE id = %s", [history[1].pk])
    with pytest.raises(CommandError, match=rf"Reroute #{history[2].pk} holds chain position 3 where 2 was expected"):
        verify()


def test_it_notices_the_newest_records_were_removed(history):
    raw("DELETE FROM queues_rerouteevent WHERE reroute_id = %s", [history[3].pk])
    raw("DELETE FROM queues_reroute WHERE id = %s", [history[3].pk])
    with pytest.raises(CommandError, match="The chain ends at position 3, but 4 records were chained"):
        verify()


def test_it_names_an_ended_reroute_written_outside_the_chain(history):
    forged = Reroute.objects.create(source_id=SALES_3, source_alias="x", target_id=SALES_4, target_alias="y",
                                    requested_by_username="mallory", status="succeeded")
    with pytest.raises(CommandError, match=rf"Reroute #{forged.pk} has ended but is not in the chain"):
        verify()


# Append-only, enforced by PostgreSQL itself ---------------------------------------------


@postgresql_only
@pytest.mark.parametrize("sql", [
    "UPDATE queues_reroute SET messages_moved = 999 WHERE id = %s",
    "UPDATE queues_reroute SET updated_at = now() WHERE id = %s",
    "UPDATE queues_reroute SET requested_by_id = NULL, note = 'changed' WHERE id = %s",
    "UPDATE queues_rerouteevent SET message = 'nothing happened' WHERE reroute_id = %s",
    "DELETE FROM queues_rerouteevent WHERE reroute_id = %s",
    "DELETE FROM queues_reroute WHERE id = %s",
])
def test_the_database_refuses_to_change_or_delete_an_ended_record(history, sql):
    with pytest.raises(DatabaseError, match="pgtrigger: Cannot"):
        with transaction.atomic():
            plain_sql(sql, [history[0].pk])
    assert verify() == "The audit log is intact: 4 ended reroutes checked.\n"


@postgresql_only
def test_the_database_refuses_to_change_any_event_of_a_running_reroute(sandbox, lead, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        running = services.reroute_request(source=devices.device_list().get(SALES_3),
                                           target=devices.device_list().get(SALES_4), note="", user=lead)
    with pytest.raises(DatabaseError, match="pgtrigger: Cannot update"):
        with transaction.atomic():
            plain_sql("UPDATE queues_rerouteevent SET message = 'x' WHERE reroute_id = %s", [running.pk])


def test_it_lets_a_user_be_deleted_and_keeps_their_name_on_their_records(history, lead):
    lead.delete()
    kept = Reroute.objects.get(pk=history[0].pk)
    assert kept.requested_by is None and kept.requested_by_username == "lead"
    assert verify() == "The audit log is intact: 4 ended reroutes checked.\n"


# The chain is keyed ----------------------------------------------------------------------


def rechain(history, hash_record) -> None:
    """What someone with SQL access but without AUDIT_CHAIN_KEY can do: recompute the chain themselves."""
    previous = "0" * 64
    for reroute in Reroute.objects.filter(pk__in=[r.pk for r in history]).order_by("chain_seq"):
        events = audit.chained_events(list(reroute.events.order_by("id")))[0]
        previous = hash_record(previous, reroute, events)
        raw("UPDATE queues_reroute SET chain_hash = %s WHERE id = %s", [previous, reroute.pk])
    raw("UPDATE queues_auditchainhead SET last_hash = %s", [previous])


def test_it_catches_a_rewrite_whose_chain_was_recomputed_without_the_key(history, settings):
    raw("UPDATE queues_reroute SET messages_moved = 0 WHERE id = %s", [history[1].pk])

    def unkeyed(previous, reroute, events):  # the old, unkeyed SHA-256, as any script can compute
        return hashlib.sha256(f"{previous}\n{audit.canonical(reroute, events)}".encode()).hexdigest()

    rechain(history, unkeyed)
    with pytest.raises(CommandError, match=rf"Reroute #{history[0].pk} \(chain position 1\) does not match"):
        verify()


def test_it_accepts_a_chain_only_with_the_key_it_was_made_with(history, settings):
    assert verify() == "The audit log is intact: 4 ended reroutes checked.\n"
    settings.AUDIT_CHAIN_KEY = "another-key-" + "x" * 40
    with pytest.raises(CommandError, match="does not match its hash"):
        verify()
    rechain(history, audit.record_hash)  # whoever holds the key can recompute it: see docs/SECURITY.md
    assert verify() == "The audit log is intact: 4 ended reroutes checked.\n"


def test_it_reports_events_added_after_the_end_that_no_attempt_writes(history):
    raw("INSERT INTO queues_rerouteevent (reroute_id, at, kind, message) VALUES (%s, now(), 'call', 'forged')",
        [history[0].pk])
    with pytest.raises(CommandError, match=rf"Reroute #{history[0].pk} .* has events after its end"):
        verify()
