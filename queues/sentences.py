"""The words of a reroute's timeline: every sentence services write into events and records.

Kept apart so that anything writing a reroute's story (services, and the history seeder in
bench/) words it exactly the same way.
"""

from __future__ import annotations

from django.conf import settings

from .sparkbot import SparkBotError

READ = "read the queue of the source"
PAUSE = "pause the queue of the source"
ROUTE = "route the queue"
READ_AGAIN = "read the queue again"
QUEUE_DOWN = ("The reroute is recorded, but the task queue is not answering: "
              "it will start by itself when the queue is back.")
HANDOVER_QUEUE_DOWN = "The task queue is not answering: this move starts by itself when it is back."
QUEUE_UNAVAILABLE = "The next attempt could not be scheduled because the task queue is down."
REQUEUED = "Handed to the task queue again: it had not started."


def not_started(seconds: int) -> str:
    return (f"No worker has started it yet, {seconds} s after it was asked for: the task workers are busy with "
            "other work, or stopped. If it waits for minutes, tell an admin.")


def handover_note(plan_name: str) -> str:
    return f"Handover “{plan_name}”"


def targets_cannot_deliver(labels: list[str]) -> str:
    """A plan's targets that cannot deliver now: their moves would strand the messages there."""
    if len(labels) == 1:
        return (f"Cannot deliver now, as the monitor last read it: {labels[0]}. "
                "Its move would leave the messages waiting there.")
    return (f"Cannot deliver now, as the monitor last read them: {', '.join(labels)}. "
            "Their moves would leave the messages waiting there.")


def requested(username: str, source_label: str, target_label: str, *, rule_name: str = "") -> str:
    who = f"Failover rule “{rule_name}” (owner: {username})" if rule_name else username
    return f"{who} asked to move the queue of {source_label} to {target_label}."


def started(attempt: int) -> str:
    return f"Attempt {attempt} of {settings.SPARKBOT_MAX_ATTEMPTS} started."


def call_answered(what: str) -> str:
    return f"SparkBot answered: {what}."


def call_failed(what: str, error: SparkBotError) -> str:
    return f"Tried to {what}: {error.code} ({error.status_code or 'no answer'})."


def call_detail(what: str, seconds: float, error: SparkBotError | None = None) -> dict:
    detail = {"what": what, "ms": round(seconds * 1000, 1)}
    if error is not None:
        detail.update(error=error.code, status=error.status_code, detail=error.detail[:300])
    return detail


def set_back(status: str) -> str:
    return f"set the queue of the source back to {status}"


def still_paused(source_label: str, status: str, reason: str) -> str:
    return f"The queue of {source_label} is still paused: {reason} Set it back to “{status}” in SparkBot."


def not_paused_status_unknown(source_label: str) -> str:
    return (f"SparkBot did not say whether the queue of {source_label} is active, so it is not paused: "
            "it could not be set back as it was.")


def retrying(reason: str, wait: float, next_attempt: int) -> str:
    return f"{reason} Retrying in {wait:.1f} s (attempt {next_attempt} of {settings.SPARKBOT_MAX_ATTEMPTS})."


def earlier_route_went_through(source_alias: str) -> str:
    return (f"The queue of {source_alias} is empty now: the route call of an earlier, interrupted attempt "
            "went through. It is not routed again.")


def recovered(attempt: int, silent_seconds: int) -> str:
    return (f"Attempt {attempt} gave no sign of life for {silent_seconds} s (its worker died or hung). "
            f"Attempt {attempt + 1} reads the queue again before routing; attempt {attempt} can no longer "
            "change this reroute.")


def last_attempt_silent(attempt: int, silent_seconds: int) -> str:
    return (f"The last attempt ({attempt}) gave no sign of life for {silent_seconds} s (its worker died or "
            "hung). Reading the queue to tell whether its route call went through.")


def interrupted(source_alias: str, target_alias: str) -> str:
    return (f"The worker stopped during the last attempt. Check the queues of {source_alias} and "
            f"{target_alias} before trying again.")


def nothing_moved(reason: str, source_alias: str, total: int) -> str:
    noun = "message" if total == 1 else "messages"
    return f"{reason} The queue of {source_alias} still holds {total} {noun}: nothing was moved."


def route_outcome_unknown(source_alias: str, reason: str, wait_seconds: int) -> str:
    return (f"Whether the route call went through is not known yet: {reason} The queue of {source_alias} "
            f"is read again in about {wait_seconds} s, before this reroute ends.")


def not_checked(reason: str) -> str:
    return f"Whether an earlier route call went through could not be checked: {reason}"


def count_unconfirmed(source_alias: str, reason: str, before: int | None) -> str:
    held = f" It held {before} {'message' if before == 1 else 'messages'} before." if before is not None else ""
    return (f"The queue of {source_alias} could not be read again after SparkBot accepted the route call "
            f"({reason.rstrip('.')}).{held}")


def superseded(attempt: int, *, ended: bool, late: str) -> str:
    now = "after the reroute had ended" if ended else "after the sweeper had handed the reroute to a new attempt"
    return (f"Attempt {attempt} answered late, {now}; what it saw ({late}) changes nothing. "
            "This note is all it wrote.")
