"""A reroute's writes of two rows in one statement (queues/bulk.py): both rows or neither, one round
trip on PostgreSQL, and a failure inside a transaction leaves that transaction usable."""

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from queues import bulk
from queues.models import Reroute, RerouteEvent

pytestmark = pytest.mark.embedded


def new_reroute(user, key=None, source="dev-1") -> Reroute:
    return Reroute(requested_by=user, requested_by_username=user.username, idempotency_key=key or uuid.uuid4(),
                   source_id=source, source_alias="Sales-1", target_id="dev-2", target_alias="Sales-2")


def requested_event(message="Requested.") -> RerouteEvent:
    return RerouteEvent(kind=RerouteEvent.Kind.REQUESTED, message=message)


def statements(queries) -> list[str]:
    """The statements sent, without the transaction's own (BEGIN, COMMIT)."""
    return [q["sql"] for q in queries if not q["sql"].startswith(("BEGIN", "COMMIT"))]


@pytest.mark.django_db
def test_it_inserts_a_row_and_its_child_together(lead):
    reroute = new_reroute(lead)
    event = requested_event()
    bulk.insert_with_child(reroute, event, link="reroute")
    stored = Reroute.objects.get(pk=reroute.pk)
    assert stored.idempotency_key == reroute.idempotency_key and stored.created_at == reroute.created_at
    assert [(e.kind, e.message) for e in stored.events.all()] == [("requested", "Requested.")]
    assert event.reroute_id == reroute.pk and not reroute._state.adding


@pytest.mark.django_db
def test_it_inserts_neither_when_the_row_breaks_a_constraint_and_the_transaction_goes_on(lead):
    key = uuid.uuid4()
    bulk.insert_with_child(new_reroute(lead, key), requested_event(), link="reroute")
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            bulk.insert_with_child(new_reroute(lead, key, source="dev-3"), requested_event("Twice."),
                                   link="reroute")
        assert Reroute.objects.count() == 1  # the transaction is still usable
    assert not RerouteEvent.objects.filter(message="Twice.").exists()


@pytest.mark.django_db
def test_it_inserts_neither_when_the_child_breaks_a_constraint(lead):
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.insert_with_child(new_reroute(lead), requested_event(message=None), link="reroute")
    assert not Reroute.objects.exists() and not RerouteEvent.objects.exists()


@pytest.fixture
def running(lead):
    reroute = new_reroute(lead)
    bulk.insert_with_child(reroute, requested_event(), link="reroute")
    return reroute


def started(reroute, message="Started.") -> RerouteEvent:
    return RerouteEvent(reroute_id=reroute.pk, kind=RerouteEvent.Kind.STARTED, message=message)


@pytest.mark.django_db
def test_it_updates_a_row_that_meets_the_conditions_writes_its_child_and_returns_the_row(running):
    at = timezone.now()
    row = bulk.update_then_insert(Reroute, running.pk, Q(status="queued"),
                                  {"status": "running", "fence": F("fence") + 1, "updated_at": at,
                                   "stats_before": {"total": 3}}, started(running))
    assert isinstance(row, Reroute) and (row.status, row.fence, row.updated_at) == ("running", 1, at)
    assert row.stats_before == {"total": 3} and row.source_alias == "Sales-1"
    assert list(running.events.values_list("kind", flat=True)) == ["requested", "started"]


@pytest.mark.django_db
def test_it_says_only_whether_it_wrote_when_the_row_is_not_read_back(running):
    assert bulk.update_then_insert(Reroute, running.pk, Q(status="queued"), {"note": "read back"},
                                   started(running), read_back=False) is True
    assert Reroute.objects.get(pk=running.pk).note == "read back" and running.events.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("read_back", [True, False])
def test_it_writes_nothing_when_the_row_does_not_meet_the_conditions(running, read_back):
    before = Reroute.objects.get(pk=running.pk)
    assert bulk.update_then_insert(Reroute, running.pk, Q(status="running"), {"status": "failed"},
                                   started(running), read_back=read_back) is None
    assert Reroute.objects.get(pk=running.pk).updated_at == before.updated_at
    assert list(running.events.values_list("kind", flat=True)) == ["requested"]


@pytest.mark.django_db
def test_it_updates_nothing_when_the_child_breaks_a_constraint_and_the_transaction_goes_on(running):
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            bulk.update_then_insert(Reroute, running.pk, Q(status="queued"), {"status": "running"},
                                    started(running, message=None))
        assert Reroute.objects.get(pk=running.pk).status == "queued"  # the transaction is still usable


@pytest.mark.django_db(transaction=True)
def test_each_write_is_one_statement_on_postgresql_outside_a_transaction(lead):
    reroute = new_reroute(lead)
    with CaptureQueriesContext(connection) as inserting:
        bulk.insert_with_child(reroute, requested_event(), link="reroute")
    with CaptureQueriesContext(connection) as updating:
        bulk.update_then_insert(Reroute, reroute.pk, Q(status="queued"), {"status": "running"}, started(reroute))
    # SQLite: a transaction of the statements Django would send (INSERT, INSERT; UPDATE, INSERT, SELECT)
    expected = (1, 1) if connection.vendor == "postgresql" else (2, 3)
    assert (len(statements(inserting)), len(statements(updating))) == expected
    assert Reroute.objects.get(pk=reroute.pk).status == "running" and reroute.events.count() == 2
