import uuid

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q

ENDED_STATUSES = ("succeeded", "failed")


class AuditLogIsAppendOnly(Exception):
    """Raised on any attempt to change an ended reroute, to change an event, or to delete either."""


class AuditQuerySet(models.QuerySet):
    """No bulk deletes, no bulk updates: rows change one at a time, through save()'s checks."""

    def delete(self):
        raise AuditLogIsAppendOnly("Reroutes and their events are never deleted.")

    def update(self, **fields):
        if fields == {"requested_by": None}:  # the user was deleted; the username copy stays
            return super().update(**fields)
        raise AuditLogIsAppendOnly("Reroutes and their events are not updated in bulk.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogIsAppendOnly("Reroutes and their events are not updated in bulk.")


class EndedRerouteChanged(pgtrigger.Condition):
    """An UPDATE of an ended reroute that changes anything but clearing the link to a deleted user."""

    sql = "built from the model's fields by resolve()"

    def resolve(self, model):
        others = pgtrigger.AnyChange(exclude=["requested_by"]).resolve(model)
        ended = ", ".join(f"'{status}'" for status in ENDED_STATUSES)
        return (f"OLD.status IN ({ended}) AND ({others} OR (NEW.requested_by_id IS NOT NULL "
                "AND NEW.requested_by_id IS DISTINCT FROM OLD.requested_by_id))")


# Append-only, enforced by PostgreSQL itself (SQLite relies on the Python checks here).
# Only the archive command deletes, inside pgtrigger.ignore(*ARCHIVE_MAY_DELETE).
ARCHIVE_MAY_DELETE = ("queues.Reroute:reroutes_are_kept", "queues.RerouteEvent:events_are_kept")


class Reroute(models.Model):
    """The audit record of one request to move a device's queue to another device.

    Never deleted; once ended, never changed (save() refuses; on PostgreSQL, triggers too).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Origin(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        HANDOVER = "handover", "Handover"
        CLI = "cli", "Command line"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    ENDED = (Status.SUCCEEDED, Status.FAILED)
    objects = AuditQuerySet.as_manager()

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Last sign of life; the sweeper reads it.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reroutes"
    )
    requested_by_username = models.CharField(max_length=150)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEB)
    handover_run = models.ForeignKey(
        "HandoverRun", null=True, blank=True, on_delete=models.PROTECT, related_name="reroutes"
    )
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True)

    source_id = models.CharField(max_length=24, db_index=True)
    source_alias = models.CharField(max_length=300)
    source_phone = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=24, db_index=True)
    target_alias = models.CharField(max_length=300)
    target_phone = models.CharField(max_length=40, blank=True)
    note = models.TextField(blank=True)
    search_text = models.TextField(blank=True, editable=False, help_text="Note, aliases and phones, lower case.")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    routed_at = models.DateTimeField(null=True, blank=True, help_text="When SparkBot accepted the route call.")
    ended_at = models.DateTimeField(null=True, blank=True)
    messages_moved = models.PositiveIntegerField(null=True, blank=True)
    stats_before = models.JSONField(null=True, blank=True)
    stats_after = models.JSONField(null=True, blank=True)
    api_reply = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    sparkbot_seconds = models.FloatField(default=0.0, help_text="Time spent inside SparkBot calls.")
    fence = models.PositiveIntegerField(
        default=0, help_text="Fencing token: bumped when an attempt takes the reroute and when the sweeper "
                             "recovers it; only the attempt holding the current value may write.")
    source_queue_status = models.CharField(
        max_length=20, blank=True, help_text="The source queue's status before a handover paused it; set back "
                                             "at the end.")
    chain_seq = models.BigIntegerField(null=True, blank=True, unique=True, help_text="Place in the audit chain.")
    chain_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        base_manager_name = "objects"
        ordering = ["-created_at", "-id"]
        permissions = [
            ("view_all_reroutes", "Can read every reroute, not only one's own"),
            ("run_handover", "Can run shift handovers"),
            ("export_reroutes", "Can export the reroute history"),
        ]
        indexes = [  # the history's filters, each ordered as the history is (newest first)
            models.Index(fields=["source_id", "-id"], name="reroute_source_newest"),
            models.Index(fields=["target_id", "-id"], name="reroute_target_newest"),
            models.Index(fields=["requested_by_username", "-id"], name="reroute_user_newest"),
            models.Index(fields=["status", "-id"], name="reroute_status_newest"),
            models.Index(fields=["origin", "-id"], name="reroute_origin_newest"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source_id"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_reroute_per_source",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="ended_reroutes_are_final", operation=pgtrigger.Update,
                              condition=EndedRerouteChanged()),
            pgtrigger.Protect(name="reroutes_are_kept", operation=pgtrigger.Delete),
        ]

    def __str__(self):
        return f"Reroute {self.pk}: {self.source_label} → {self.target_label} ({self.status})"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored_ended = instance.__dict__.get("status") in cls.ENDED
        return instance

    def save(self, *args, **kwargs):
        if getattr(self, "_stored_ended", False):
            raise AuditLogIsAppendOnly(f"Reroute {self.pk} has ended: its record cannot change.")
        super().save(*args, **kwargs)
        self._stored_ended = self.status in self.ENDED

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Reroutes are never deleted.")

    @property
    def source_label(self) -> str:
        return f"{self.source_alias} ({self.source_phone})" if self.source_phone else self.source_alias

    @property
    def target_label(self) -> str:
        return f"{self.target_alias} ({self.target_phone})" if self.target_phone else self.target_alias

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at and self.created_at:
            return (self.ended_at - self.created_at).total_seconds()
        return None

    @property
    def outcome(self) -> str:
        """The sentence a support lead reads about where this reroute stands."""
        if self.status == self.Status.SUCCEEDED:
            if self.messages_moved is None and self.error_message:
                return (f"Routed the queue of {self.source_alias} to {self.target_alias}; how many messages "
                        f"moved is not confirmed. {self.error_message}")
            if self.messages_moved is None:
                return (f"Routed the queue of {self.source_alias} to {self.target_alias}; "
                        "SparkBot did not report how many messages moved.")
            still_held = (self.stats_after or {}).get("total") if self.routed_at else None
            if self.messages_moved == 0 and still_held:
                noun = "message" if still_held == 1 else "messages"
                return (f"SparkBot accepted the route call, but the queue of {self.source_alias} still holds "
                        f"{still_held} {noun}: none moved to {self.target_alias}.")
            if self.messages_moved == 0:
                return f"{self.source_alias} had no queued messages: nothing to move, nothing changed."
            noun = "message" if self.messages_moved == 1 else "messages"
            return f"Moved {self.messages_moved} {noun} from {self.source_alias} to {self.target_alias}."
        if self.status == self.Status.FAILED:
            return self.error_message
        last = self.events.order_by("-id").first()
        return last.message if last else "Waiting for a worker."


class RerouteEvent(models.Model):
    """One step of a reroute's timeline: each attempt, wait and answer."""

    class Kind(models.TextChoices):
        REQUESTED = "requested", "Requested"
        STARTED = "started", "Started"
        CALL = "call", "SparkBot call"
        RETRY = "retry", "Retry scheduled"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        RECOVERED = "recovered", "Recovered"
        QUEUE_DOWN = "queue_down", "Task queue down"
        SUPERSEDED = "superseded", "Late attempt"

    objects = AuditQuerySet.as_manager()

    reroute = models.ForeignKey(Reroute, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    message = models.TextField()
    detail = models.JSONField(null=True, blank=True)

    class Meta:
        base_manager_name = "objects"
        ordering = ["id"]
        triggers = [
            pgtrigger.Protect(name="events_are_final", operation=pgtrigger.Update),
            pgtrigger.Protect(name="events_are_kept", operation=pgtrigger.Delete),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}: {self.message}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Events are written once and never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Events are never deleted.")


class AuditChainHead(models.Model):
    """The end of the audit chain (one row), locked by whoever appends to it."""

    SINGLETON = 1
    seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    archived_through_seq = models.BigIntegerField(default=0, help_text="Records up to here were archived.")
    archived_last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self):
        return f"Audit chain at position {self.seq}"


class HandoverPlan(models.Model):
    """A named list of source-to-target moves run together at shift change, now or on a schedule."""

    class Schedule(models.TextChoices):
        NONE = "none", "Only when run by hand"
        ONCE = "once", "Once, at a date and time"
        DAILY = "daily", "Every day at a time"

    name = models.CharField(max_length=100, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    pause_sources = models.BooleanField(
        default=False, help_text="Pause each source's queue before routing it (if it was delivering), and set it "
                                 "back to its status after.")
    in_order = models.BooleanField(
        default=False, help_text="Run the moves one after another, in the listed order (needed when a target "
                                 "is also a source, e.g. A to B and B to C).")
    schedule = models.CharField(max_length=5, choices=Schedule.choices, default=Schedule.NONE)
    run_at = models.DateTimeField(null=True, blank=True, help_text="For a one-off schedule.")
    daily_time = models.TimeField(null=True, blank=True, help_text="For a daily schedule.")
    time_zone = models.CharField(max_length=64, default="UTC")
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    schedule_problem = models.CharField(
        max_length=500, blank=True, help_text="Why the scheduler could not start the last due run, if it could not.")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class HandoverPair(models.Model):
    plan = models.ForeignKey(HandoverPlan, on_delete=models.CASCADE, related_name="pairs")
    position = models.PositiveIntegerField()
    source_id = models.CharField(max_length=24)
    target_id = models.CharField(max_length=24)

    class Meta:
        ordering = ["plan", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "source_id"], name="one_move_per_source_in_a_plan"),
        ]

    def __str__(self):
        return f"{self.source_id} → {self.target_id}"


class HandoverRun(models.Model):
    """One run of a plan: its reroutes (origin handover) and, afterwards, its report."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Run by hand"
        SCHEDULE = "schedule", "Scheduled"

    plan = models.ForeignKey(HandoverPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    plan_name = models.CharField(max_length=100)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    started_by_username = models.CharField(max_length=150, blank=True)
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.MANUAL)
    pause_sources = models.BooleanField(default=False)
    in_order = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["plan"], condition=Q(ended_at__isnull=True),
                                    name="one_unfinished_run_per_plan"),
        ]

    def __str__(self):
        return f"{self.plan_name} ({self.created_at:%Y-%m-%d %H:%M})"


class HandoverRunItem(models.Model):
    """One move of a run: waiting for its turn (or for its busy source), then its latest reroute."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        STARTED = "started", "Started"
        CANCELLED = "cancelled", "Cancelled"
        SKIPPED = "skipped", "Skipped"

    run = models.ForeignKey(HandoverRun, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    source_id = models.CharField(max_length=24)
    source_alias = models.CharField(max_length=300)
    source_phone = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=24)
    target_alias = models.CharField(max_length=300)
    target_phone = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    waiting_reason = models.CharField(max_length=300, blank=True)
    tries = models.PositiveSmallIntegerField(default=0)
    reroute = models.ForeignKey(Reroute, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["run", "position"]

    def __str__(self):
        return f"{self.source_alias} → {self.target_alias}"
