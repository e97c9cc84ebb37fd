"""The audit chain, and `manage.py verify_audit_log` catching rows altered behind the app's back."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from queues import devices, services
from queues.models import Reroute, RerouteEvent
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

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


def raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


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
