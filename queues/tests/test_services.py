"""Services against the real sandbox over HTTP, run in this process (the worker's flow is in test_tasks)."""

import time
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from queues import audit, devices, services, sparkbot
from queues.models import HandoverRun, Reroute
from sparkbot_sandbox.seed import SALES_1, SALES_2, SALES_3, SALES_4

from tests.support import celery_publishes_to

pytestmark = pytest.mark.django_db


def request(user, source=SALES_3, target=SALES_4, **kwargs) -> Reroute:
    device_list = devices.device_list()
    return services.reroute_request(
        source=device_list.get(source), target=device_list.get(target), note="shift change", user=user, **kwargs
    )


@pytest.fixture
def requested(sandbox, lead, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reroute = request(lead)
    assert len(callbacks) == 1  # the worker is told only once the row is committed
    return reroute


def run_to_end(reroute: Reroute, attempt: int = 1) -> Reroute:
    """Run attempts the way the task does, without waiting between them."""
    wait = services.reroute_execute(reroute_id=reroute.pk, attempt=attempt)
    while wait is not None:
        attempt += 1
        wait = services.reroute_execute(reroute_id=reroute.pk, attempt=attempt)
    reroute.refresh_from_db()
    return reroute


def kinds(reroute: Reroute) -> list[str]:
    return list(reroute.events.values_list("kind", flat=True))


def test_it_records_who_what_and_why_with_its_first_event(requested, lead):
    assert requested.status == "queued"
    assert (requested.requested_by, requested.requested_by_username) == (lead, "lead")
    assert (requested.source_alias, requested.source_phone) == ("Sales-3", "+447700900003")
    assert requested.target_alias == "Sales-4" and requested.note == "shift change"
    assert kinds(requested) == ["requested"]


def test_it_moves_the_queue_and_says_how_many(requested, sandbox):
    reroute = run_to_end(requested)
    assert reroute.status == "succeeded" and reroute.messages_moved == 37
    assert reroute.outcome == "Moved 37 messages from Sales-3 to Sales-4."
    assert reroute.stats_before["total"] == 37 and reroute.stats_after["total"] == 0
    assert reroute.api_reply["moved"] == 37
    assert reroute.started_at and reroute.ended_at and reroute.routed_at
    assert reroute.sparkbot_seconds > 0
    assert kinds(reroute) == ["requested", "started", "call", "call", "call", "succeeded"]
    assert sandbox.queue(SALES_4)["total"] == 37
    assert len(sandbox.calls(method="PATCH")) == 1


def test_it_ends_an_empty_queue_as_succeeded_with_nothing_moved(sandbox, lead):
    reroute = run_to_end(request(lead, source=SALES_2, target=SALES_4))
    assert reroute.status == "succeeded" and reroute.messages_moved == 0
    assert reroute.outcome == "Sales-2 had no queued messages: nothing to move, nothing changed."
    assert sandbox.calls(method="PATCH") == []


@pytest.mark.parametrize("status, code, sentence", [
    (401, "unauthorized", "SparkBot refused the API key (401). An admin must fix SPARKBOT_API_KEY."),
    (403, "forbidden", "SparkBot answered 403: this API key may not route the queue of Sales-3 (+447700900003)."),
    (409, "refused", "SparkBot refused to route Sales-3 (+447700900003) to Sales-4 (+447700900004) (409)"),
    (422, "refused", "SparkBot refused to route Sales-3 (+447700900003) to Sales-4 (+447700900004) (422)"),
    (400, "bad_request", "SparkBot refused the request as invalid (400)"),
])
def test_it_fails_at_once_on_an_answer_that_retrying_cannot_change(requested, sandbox, status, code, sentence):
    sandbox.fault(route="route_queue", status=status, times=5)
    reroute = run_to_end(requested)
    assert reroute.status == "failed" and reroute.attempts == 1
    assert reroute.error_code == code and reroute.error_message.startswith(sentence)
    assert len(sandbox.calls(method="PATCH")) == 1
    assert "retry" not in kinds(reroute)


def test_it_names_the_source_that_sparkbot_no_longer_knows(requested, sandbox):
    sandbox.control("POST", f"/devices/{SALES_3}/remove")
    reroute = run_to_end(requested)
    assert reroute.error_code == "device_not_found"
    assert reroute.error_message == "Sales-3 (+447700900003) is no longer a SparkBot device; refresh the device list."


def test_it_names_the_target_that_sparkbot_no_longer_knows(requested, sandbox):
    sandbox.control("POST", f"/devices/{SALES_4}/remove")
    reroute = run_to_end(requested)
    assert reroute.error_message == "Sales-4 (+447700900004) is no longer a SparkBot device; refresh the device list."
    assert sandbox.queue(SALES_3)["total"] == 37  # nothing moved


def test_it_retries_server_errors_then_succeeds(requested, sandbox):
    sandbox.fault(route="route_queue", status=503, times=2)
    first_wait = services.reroute_execute(reroute_id=requested.pk, attempt=1)
    assert 0 < first_wait <= 0.05
    reroute = run_to_end(requested, attempt=2)
    assert reroute.status == "succeeded" and reroute.attempts == 3 and reroute.messages_moved == 37
    retries = reroute.events.filter(kind="retry")
    assert [e.message for e in retries][0].startswith("SparkBot did not answer (503). Retrying in")
    assert "(attempt 2 of 4)" in retries[0].message and "(attempt 3 of 4)" in retries[1].message
    assert len(sandbox.calls(method="PATCH")) == 3


def test_it_fails_with_the_last_error_after_the_last_attempt(requested, sandbox):
    sandbox.fault(route="route_queue", status=500, times=10)
    reroute = run_to_end(requested)
    assert reroute.status == "failed" and reroute.attempts == 4
    assert reroute.error_code == "unavailable"
    assert reroute.error_message == ("SparkBot did not answer (500). The queue of Sales-3 still holds 37 messages: "
                                     "nothing was moved.")
    assert reroute.stats_after["total"] == 37  # the reading that says so is kept, as after a success
    assert len(sandbox.calls(method="PATCH")) == 4


def test_it_honours_retry_after_capped_by_the_setting(requested, sandbox, settings):
    settings.SPARKBOT_RETRY_MAX_SECONDS = 30
    sandbox.fault(route="route_queue", status=429, times=1, retry_after="12")
    assert services.reroute_execute(reroute_id=requested.pk, attempt=1) == 12
    settings.SPARKBOT_RETRY_MAX_SECONDS = 5
    sandbox.fault(route="route_queue", status=429, times=1, retry_after="12")
    assert services.reroute_execute(reroute_id=requested.pk, attempt=2) == 5


def test_it_retries_a_call_that_hangs_past_the_timeout(requested, sandbox):
    sandbox.fault(route="queue_get", hang_seconds=3, times=1)
    reroute = run_to_end(requested)
    assert reroute.status == "succeeded" and reroute.attempts == 2
    assert reroute.events.filter(kind="call", detail__error="timeout").exists()


def test_it_does_not_route_twice_when_only_the_last_read_failed(requested, sandbox):
    sandbox.fault(route="queue_get", status=502, times=1)  # the first read fails: nothing routed yet
    services.reroute_execute(reroute_id=requested.pk, attempt=1)
    requested.refresh_from_db()
    assert requested.routed_at is None
    services.reroute_execute(reroute_id=requested.pk, attempt=2)  # succeeds
    requested.refresh_from_db()
    assert requested.status == "succeeded" and len(sandbox.calls(method="PATCH")) == 1


def test_it_ignores_a_duplicate_or_late_task(requested, sandbox):
    run_to_end(requested)
    assert services.reroute_execute(reroute_id=requested.pk, attempt=1) is None
    assert services.reroute_execute(reroute_id=requested.pk, attempt=2) is None
    assert services.reroute_execute(reroute_id=999999, attempt=1) is None
    assert len(sandbox.calls(method="PATCH")) == 1


def test_it_returns_the_same_reroute_for_the_same_idempotency_key(sandbox, lead, django_capture_on_commit_callbacks):
    key = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = request(lead, idempotency_key=key)
        second = request(lead, idempotency_key=key)
    assert first.pk == second.pk and Reroute.objects.count() == 1 and len(callbacks) == 1


def test_it_refuses_a_second_reroute_of_a_busy_source(requested, lead):
    with pytest.raises(services.SourceBusy) as caught:
        request(lead, target=SALES_1)
    assert caught.value.active.pk == requested.pk
    assert Reroute.objects.count() == 1


def test_the_database_itself_allows_one_active_reroute_per_source(requested):
    clone = Reroute(source_id=SALES_3, source_alias="x", target_id=SALES_1, target_alias="y",
                    requested_by_username="someone")
    with pytest.raises(IntegrityError):
        clone.save()


def test_it_accepts_a_new_reroute_once_the_previous_one_ended(requested, lead):
    run_to_end(requested)
    assert request(lead, target=SALES_1).status == "queued"


def backdate(reroute: Reroute, seconds: int = 3600) -> None:
    """Make a reroute look silent for `seconds` (raw SQL: the models refuse bulk updates)."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Reroute._meta.db_table} SET updated_at = %s WHERE id = %s",
                       [timezone.now() - timedelta(seconds=seconds), reroute.pk])


def test_it_recovers_an_attempt_whose_worker_died_without_routing_twice(
        requested, sandbox, django_capture_on_commit_callbacks):
    services.reroute_claim(reroute_id=requested.pk, attempt=1)
    requested.refresh_from_db()
    # The dead attempt read the queue and its route call went through, but nothing recorded it.
    services._save(requested, stats_before={"total": 37})
    sparkbot.client().route_queue(SALES_3, SALES_4)
    backdate(requested)
    assert services.reroutes_sweep() == {"requeued": 0, "recovered": 1}
    assert services.reroutes_sweep() == {"requeued": 0, "recovered": 0}  # it is alive again

    reroute = run_to_end(requested, attempt=2)
    assert reroute.status == "succeeded" and reroute.messages_moved == 37
    recovered = list(reroute.events.filter(kind="recovered").values_list("message", flat=True))
    assert recovered[0].startswith("Attempt 1 gave no sign of life for 300 s (its worker died or hung).")
    assert recovered[1].startswith("The queue of Sales-3 is empty now: the route call of an earlier")
    assert len(sandbox.calls(method="PATCH")) == 1


def test_it_routes_after_recovery_when_the_dead_attempt_had_not(requested, sandbox, django_capture_on_commit_callbacks):
    services.reroute_claim(reroute_id=requested.pk, attempt=1)
    backdate(requested)
    with django_capture_on_commit_callbacks(execute=False):
        services.reroutes_sweep()
    reroute = run_to_end(requested, attempt=2)
    assert reroute.status == "succeeded" and reroute.messages_moved == 37
    assert len(sandbox.calls(method="PATCH")) == 1


def test_it_ends_a_reroute_whose_last_attempt_died_before_reading_the_queue(requested, settings):
    services.reroute_claim(reroute_id=requested.pk, attempt=1)
    settings.SPARKBOT_MAX_ATTEMPTS = 1
    backdate(requested)
    assert services.reroutes_sweep() == {"requeued": 0, "recovered": 1}
    requested.refresh_from_db()
    assert requested.status == "failed" and requested.error_code == "interrupted"
    assert requested.error_message.startswith("The worker stopped during the last attempt.")


def test_it_reads_the_queue_before_failing_a_last_attempt_that_died_after_reading_it(requested, sandbox, settings):
    settings.SPARKBOT_MAX_ATTEMPTS = 1
    services.reroute_claim(reroute_id=requested.pk, attempt=1)
    requested.refresh_from_db()
    services._save(requested, stats_before={"total": 37})  # it read the queue, then died before routing
    backdate(requested)
    assert services.reroutes_sweep()["recovered"] == 1
    requested.refresh_from_db()
    assert requested.status == "failed" and requested.error_code == "interrupted"
    assert requested.error_message.endswith("The queue of Sales-3 still holds 37 messages: nothing was moved.")
    assert sandbox.calls(method="PATCH") == []


def test_it_ends_succeeded_when_the_dead_last_attempt_had_routed_unrecorded(requested, sandbox, settings):
    settings.SPARKBOT_MAX_ATTEMPTS = 1
    services.reroute_claim(reroute_id=requested.pk, attempt=1)
    requested.refresh_from_db()
    services._save(requested, stats_before={"total": 37})
    sparkbot.client().route_queue(SALES_3, SALES_4)  # its route call went through; its answer was lost
    backdate(requested)
    assert services.reroutes_sweep()["recovered"] == 1
    requested.refresh_from_db()
    assert requested.status == "succeeded" and requested.messages_moved == 37
    assert len(sandbox.calls(method="PATCH")) == 1


def test_it_hands_a_reroute_the_queue_never_delivered_to_it_again(requested, django_capture_on_commit_callbacks):
    assert services.reroutes_sweep() == {"requeued": 0, "recovered": 0}  # too soon
    backdate(requested)
    assert services.reroutes_sweep()["requeued"] == 1
    assert requested.events.filter(kind="recovered").exists()
    assert services.reroutes_sweep()["requeued"] == 0


def test_it_records_a_reroute_when_the_task_queue_is_down(sandbox, lead, django_capture_on_commit_callbacks):
    from django.conf import settings

    celery_publishes_to("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        with django_capture_on_commit_callbacks(execute=True):
            reroute = request(lead)
    finally:
        celery_publishes_to(settings.CELERY_BROKER_URL)
    assert reroute.status == "queued"
    assert reroute.outcome == services.QUEUE_DOWN_MESSAGE


# Fencing: a late attempt cannot end a reroute a second time ------------------------------


def test_it_lets_a_late_attempt_write_only_a_note_once_another_attempt_ended_the_reroute(requested, sandbox):
    """Attempt 1 is slow inside its route call; the sweeper takes it for dead, attempt 2 ends the
    reroute; then attempt 1's answer arrives. It must not end the reroute again."""
    first = services.reroute_claim(reroute_id=requested.pk, attempt=1)
    services._call(first, "read the queue of the source",
                   lambda: sparkbot.client().queue_stats(SALES_3)[0],
                   record=lambda stats: {"stats_before": services._stats_dict(stats)})
    backdate(requested)
    assert services.reroutes_sweep()["recovered"] == 1
    second = run_to_end(requested, attempt=2)
    assert second.status == "succeeded" and second.messages_moved == 37

    with pytest.raises(services.Superseded):  # attempt 1's route answer comes in now
        services._call(first, "route the queue", lambda: sparkbot.client().route_queue(SALES_3, SALES_4),
                       record=lambda reply: {"routed_at": timezone.now()})
    assert services.reroute_execute(reroute_id=requested.pk, attempt=1) is None  # its redelivered task: nothing

    first_end = Reroute.objects.get(pk=requested.pk)
    assert (first_end.status, first_end.chain_seq, first_end.chain_hash) == (
        "succeeded", second.chain_seq, second.chain_hash)
    assert kinds(first_end).count("succeeded") == 1 and "failed" not in kinds(first_end)
    assert audit.chain_verify().intact


def test_it_records_one_note_and_nothing_else_from_a_superseded_attempt(requested, sandbox):
    first = services.reroute_claim(reroute_id=requested.pk, attempt=1)
    backdate(requested)
    services.reroutes_sweep()
    events_before = kinds(requested)
    assert services._run_claimed(first) is None  # the whole late attempt, from its first call
    late = Reroute.objects.get(pk=requested.pk)
    assert late.status == "running" and late.attempts == 1 and late.stats_before is None
    assert kinds(late) == events_before + ["superseded"]
    assert late.events.last().message.startswith(
        "Attempt 1 answered late, after the sweeper had handed the reroute to a new attempt")


def test_the_audit_chain_refuses_a_record_that_already_has_a_place(requested, sandbox):
    reroute = run_to_end(requested)
    with pytest.raises(audit.AlreadyChained):
        with transaction.atomic():
            audit.chain_append(reroute)


# Routed means routed ---------------------------------------------------------------------


def routed_unrecorded_by_attempt_1(reroute: Reroute) -> Reroute:
    """Attempt 1 read the queue and SparkBot accepted its route call, recorded; then it died."""
    services.reroute_claim(reroute_id=reroute.pk, attempt=1)
    reroute.refresh_from_db()
    reply = sparkbot.client().route_queue(SALES_3, SALES_4)
    services._save(reroute, stats_before={"total": 37}, routed_at=timezone.now(), api_reply=reply.data)
    return reroute


def test_it_ends_a_routed_reroute_succeeded_when_the_queue_cannot_be_read_again(requested, sandbox):
    reroute = routed_unrecorded_by_attempt_1(requested)
    sandbox.fault(route="queue_get", status=503, times=20)
    reroute = run_to_end(reroute, attempt=2)
    assert reroute.status == "succeeded" and reroute.messages_moved is None
    assert reroute.error_code == "count_unconfirmed"
    assert reroute.outcome == (
        "Routed the queue of Sales-3 to Sales-4; how many messages moved is not confirmed. The queue of Sales-3 "
        "could not be read again after SparkBot accepted the route call (SparkBot did not answer (503)). "
        "It held 37 messages before.")
    assert len(sandbox.calls(method="PATCH")) == 1


def test_it_marks_any_2xx_route_answer_routed_and_keeps_a_body_that_is_not_json(requested, sandbox):
    sandbox.fault(route="route_queue", status=202, body="Accepted, moving the queue", times=1)
    reroute = run_to_end(requested)
    assert reroute.status == "succeeded" and reroute.routed_at is not None
    assert reroute.api_reply == {"not_json": "Accepted, moving the queue"}
    # this sandbox answered without moving anything: the count says so, in plain words
    assert reroute.messages_moved == 0
    assert reroute.outcome == ("SparkBot accepted the route call, but the queue of Sales-3 still holds "
                               "37 messages: none moved to Sales-4.")


def test_it_reads_the_queue_before_failing_when_the_last_route_call_timed_out(requested, sandbox, settings):
    settings.SPARKBOT_MAX_ATTEMPTS = 1
    sandbox.fault(route="route_queue", hang_seconds=1.5, times=1)  # past the 1 s deadline; not carried out
    reroute = run_to_end(requested)
    assert reroute.status == "failed" and reroute.error_code == "timeout"
    assert reroute.error_message == ("SparkBot did not answer within 1 seconds. The queue of Sales-3 still "
                                     "holds 37 messages: nothing was moved.")


# Idempotency keys belong to one request of one user --------------------------------------


def test_it_refuses_another_users_idempotency_key_without_showing_their_reroute(
        sandbox, lead, make_user, django_capture_on_commit_callbacks):
    key = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=False):
        mine = request(lead, idempotency_key=key)
        with pytest.raises(services.KeyReused):
            request(make_user("intruder", "Support lead"), idempotency_key=key)
    assert list(Reroute.objects.values_list("pk", flat=True)) == [mine.pk]


def test_it_refuses_the_same_key_for_other_parameters(sandbox, lead, django_capture_on_commit_callbacks):
    key = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=False):
        request(lead, idempotency_key=key)
        with pytest.raises(services.KeyReused):
            request(lead, target=SALES_1, idempotency_key=key)
    assert Reroute.objects.count() == 1


def test_it_records_no_recovery_when_the_broker_cannot_take_the_next_attempt(requested):
    from django.conf import settings

    services.reroute_claim(reroute_id=requested.pk, attempt=1)
    backdate(requested)
    fence = Reroute.objects.get(pk=requested.pk).fence
    celery_publishes_to("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        assert services.reroutes_sweep()["recovered"] == 0
    finally:
        celery_publishes_to(settings.CELERY_BROKER_URL)
    silent = Reroute.objects.get(pk=requested.pk)
    assert "recovered" not in kinds(silent) and silent.fence == fence
    assert services.reroutes_sweep()["recovered"] == 1  # the broker is back: the next sweep does it


@pytest.mark.django_db(transaction=True)
def test_it_never_takes_a_slow_but_live_attempt_for_a_dead_one(sandbox, manager, settings, monkeypatch):
    """Five slow calls make an attempt longer than the silence bound; each answer is a sign of life."""
    import threading

    from queues import handovers
    from queues.models import HandoverPlan

    settings.REROUTE_STUCK_AFTER_SECONDS = 1.5
    sandbox.control("POST", "/latency", json={"ms": 700})
    plan = handovers.plan_save(plan=HandoverPlan(name="Slow", pause_sources=True), pairs=[], user=None)
    run = HandoverRun.objects.create(plan=plan, plan_name=plan.name, pause_sources=True, started_by_username="m")
    device_list = devices.device_list()
    # This test is the worker: a session worker on the shared broker must not take attempt 1 first.
    monkeypatch.setattr(services, "_publish_first_attempt", lambda reroute: None)
    reroute = services.reroute_request(source=device_list.get(SALES_3), target=device_list.get(SALES_4),
                                       note="", user=manager, handover_run=run)
    sweeps, done = [], threading.Event()

    def sweep_all_the_time():
        while not done.is_set():
            sweeps.append(services.reroutes_sweep())
            time.sleep(0.1)
        connection.close()

    sweeper = threading.Thread(target=sweep_all_the_time)
    sweeper.start()
    try:
        started = time.monotonic()
        assert services.reroute_execute(reroute_id=reroute.pk, attempt=1) is None
        took = time.monotonic() - started
    finally:
        done.set()
        sweeper.join()
    reroute.refresh_from_db()
    assert took > settings.REROUTE_STUCK_AFTER_SECONDS * 2 and len(sweeps) > 10
    assert reroute.status == "succeeded" and reroute.attempts == 1 and reroute.messages_moved == 37
    assert "recovered" not in kinds(reroute) and "superseded" not in kinds(reroute)
    assert sum(sweep["recovered"] for sweep in sweeps) == 0


def test_it_reads_the_queue_before_failing_when_the_next_attempt_cannot_be_scheduled(requested, sandbox):
    """Found by the chaos soak: a route call carried out but whose answer was lost, then the broker
    down when the retry is scheduled; the reroute ended failed with its messages moved."""
    from django.conf import settings

    sandbox.chaos(rate=1.0, kinds=["lost_answer"], routes=["route_queue"], hang_seconds=1.5)
    wait = services.reroute_execute(reroute_id=requested.pk, attempt=1)
    sandbox.chaos_stop()
    assert wait is not None and sandbox.queue(SALES_3)["total"] == 0  # SparkBot moved them; we do not know yet
    celery_publishes_to("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        services.reroute_retry_scheduled(reroute_id=requested.pk, attempt=2, wait=wait)
    finally:
        celery_publishes_to(settings.CELERY_BROKER_URL)
    requested.refresh_from_db()
    assert requested.status == "succeeded" and requested.messages_moved == 37
    assert "went through" in " ".join(requested.events.values_list("message", flat=True))


def test_it_reads_the_queue_before_failing_a_last_attempt_whose_first_read_failed(requested, sandbox, settings):
    """Found by the chaos soak: an earlier attempt's route call was carried out without an answer;
    the last attempt's first reading failed, and the reroute ended failed with its messages moved."""
    settings.SPARKBOT_MAX_ATTEMPTS = 2
    sandbox.chaos(rate=1.0, kinds=["lost_answer"], routes=["route_queue"], hang_seconds=1.5)
    assert services.reroute_execute(reroute_id=requested.pk, attempt=1) is not None
    sandbox.chaos_stop()
    sandbox.fault(route="queue_get", status=500, times=1)  # the last attempt's first reading
    assert services.reroute_execute(reroute_id=requested.pk, attempt=2) is None
    requested.refresh_from_db()
    assert requested.status == "succeeded" and requested.messages_moved == 37
    assert len(sandbox.routes(SALES_3)) == 1
