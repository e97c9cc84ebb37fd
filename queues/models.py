import uuid

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

ENDED_STATUSES = ("succeeded", "failed")


class PlainInsertJSONField(models.JSONField):
    """A JSONField whose bulk inserts are plain VALUES. On PostgreSQL, Django bulk inserts many rows
    through UNNEST arrays, which psycopg quotes element by element in Python: JSON is full of quotes,
    and that cost ~0.3 ms a row (docs/PERFORMANCE.md). A field with a placeholder of its own is
    left out of UNNEST."""

    def get_placeholder(self, value, compiler, connection):
        return "%s"


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

    def sign_of_life(self, reroute) -> bool:
        """An attempt's sign of life and its SparkBot time so far, written only while the reroute is
        active and the attempt holds its fence; False (nothing written) otherwise (services._fenced)."""
        held = self.filter(pk=reroute.pk, fence=reroute.fence, status__in=["queued", "running"])
        return bool(super(AuditQuerySet, held).update(updated_at=timezone.now(),
                                                      sparkbot_seconds=reroute.sparkbot_seconds))


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
        RULE = "rule", "Rule"

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
    # The rule that fired it: kept as it was (no database constraint), so that deleting a rule never
    # touches an ended record; `rule_name` keeps its name.
    rule = models.ForeignKey("Rule", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                             related_name="reroutes")
    rule_name = models.CharField(max_length=100, blank=True)

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
            models.Index(fields=["rule", "-id"], name="reroute_rule_newest"),
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


class Number(models.Model):
    """The fleet monitor's current view of one WhatsApp number: its state since when, and its queue.

    Written only by the monitor (queues/monitor.py); pages read it. `can_deliver` is kept with the
    statuses so that the overview sorts and filters on it in the database.
    """

    device_id = models.CharField(max_length=24, unique=True)
    alias = models.CharField(max_length=300)
    phone = models.CharField(max_length=40, blank=True)
    account_status = models.CharField(max_length=40)
    session_status = models.CharField(max_length=40)
    can_deliver = models.BooleanField(default=False)
    state_since = models.DateTimeField(help_text="When the monitor first saw this account and session status.")
    undeliverable_since = models.DateTimeField(
        null=True, blank=True, help_text="Since when it cannot deliver without a break (None while it can).")
    listed = models.BooleanField(default=True, help_text="Still in SparkBot's device list.")
    listed_at = models.DateTimeField(help_text="When the monitor last saw it in SparkBot's device list.")
    queue_status = models.CharField(max_length=20, blank=True)
    queue_total = models.PositiveIntegerField(null=True, blank=True)
    queue_pending = models.PositiveIntegerField(null=True, blank=True)
    queue_processing = models.PositiveIntegerField(null=True, blank=True)
    queue_scheduled = models.PositiveIntegerField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True, help_text="When its queue was last read.")
    read_problem = models.CharField(max_length=300, blank=True, help_text="Why the last queue reading failed.")
    snapshot_at = models.DateTimeField(null=True, blank=True, help_text="When its last snapshot was written.")
    depth_24h = models.JSONField(default=list, blank=True,
                                 help_text="Its highest queue depth per half hour over the last day: [[slot, depth]].")

    class Meta:
        ordering = ["alias", "device_id"]
        indexes = [models.Index(fields=["listed", "can_deliver", "queue_total"], name="number_attention")]

    def __str__(self):
        return self.label

    @property
    def label(self) -> str:
        return f"{self.alias} ({self.phone})" if self.phone else self.alias

    @property
    def holds_messages(self) -> bool:
        return bool(self.queue_total)


class NumberSnapshot(models.Model):
    """One reading of a number: written when something changed, or at least every MONITOR_HEARTBEAT_MINUTES."""

    number = models.ForeignKey(Number, on_delete=models.CASCADE, related_name="snapshots")
    at = models.DateTimeField()
    account_status = models.CharField(max_length=40)
    session_status = models.CharField(max_length=40)
    queue_status = models.CharField(max_length=20, blank=True)
    queue_total = models.PositiveIntegerField(null=True, blank=True)
    queue_pending = models.PositiveIntegerField(null=True, blank=True)
    queue_processing = models.PositiveIntegerField(null=True, blank=True)
    queue_scheduled = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["number", "at"]
        indexes = [models.Index(fields=["number", "at"], name="snapshot_number_at"),
                   models.Index(fields=["at"], name="snapshot_at")]

    def __str__(self):
        return f"{self.number_id} at {self.at:%Y-%m-%d %H:%M:%S}"


class MonitorState(models.Model):
    """The fleet monitor's own state (one row): who runs the cycle now, its call log, and its back-off."""

    SINGLETON = 1
    lease_owner = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    calls = models.JSONField(default=list, blank=True, help_text="When it called SparkBot in the last minute.")
    devices_read_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="SparkBot failures in a row (the back-off grows).")
    cycle_started_at = models.DateTimeField(null=True, blank=True)
    cycle_ended_at = models.DateTimeField(null=True, blank=True)
    version = models.BigIntegerField(default=0, help_text="Bumped whenever a number changed; pages cache on it.")
    evaluation_owner = models.CharField(max_length=32, blank=True, help_text="Who evaluates the rules now.")
    evaluation_until = models.DateTimeField(null=True, blank=True)
    evaluation_last = models.CharField(max_length=32, blank=True,
                                       help_text="The last evaluation, if it ended: its process may reuse its work.")

    def __str__(self):
        return "Fleet monitor"


# Failover and overflow rules (issue 11) -----------------------------------------------------


class Rule(models.Model):
    """When a source meets the condition for long enough, move its queue to a healthy target.

    Sources, exceptions and targets are device ids (the targets in the order given).
    """

    class Condition(models.TextChoices):
        CANNOT_DELIVER = "cannot_deliver", "The source cannot deliver"
        OVERFLOW = "overflow", "The source holds too many messages while online"

    class TargetKind(models.TextChoices):
        ONE = "one", "One number"
        FALLBACK = "fallback", "The first of a list that can deliver"
        POOL = "pool", "The healthy member of a pool with the smallest queue"

    name = models.CharField(max_length=100, unique=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    owner_username = models.CharField(max_length=150)
    enabled = models.BooleanField(default=False)
    dry_run = models.BooleanField(default=True, help_text="Record what it would do, and route nothing.")
    all_sources = models.BooleanField(default=False)
    sources = models.JSONField(default=list, blank=True)
    exceptions = models.JSONField(default=list, blank=True, help_text="Numbers left out when all are sources.")
    condition = models.CharField(max_length=20, choices=Condition.choices, default=Condition.CANNOT_DELIVER)
    minutes = models.PositiveIntegerField(default=5, help_text="How long, without a break, the condition must hold.")
    messages = models.PositiveIntegerField(default=1, help_text="How many messages the source must hold at least.")
    target_kind = models.CharField(max_length=10, choices=TargetKind.choices, default=TargetKind.ONE)
    targets = models.JSONField(default=list)
    cooldown_minutes = models.PositiveIntegerField(default=30)
    active_from = models.TimeField(null=True, blank=True)
    active_until = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class RuleDecision(models.Model):
    """What a rule decided about one source, with the readings that made it (recorded when it changes)."""

    class Outcome(models.TextChoices):
        FIRED = "fired", "Fired"
        WOULD_FIRE = "would_fire", "Would fire (dry run)"
        WAITING = "waiting", "Waiting"
        COOLING_DOWN = "cooling_down", "Cooling down"
        NO_HEALTHY_TARGET = "no_target", "No healthy target"
        OUTSIDE_HOURS = "outside_hours", "Outside active hours"
        SOURCE_BUSY = "source_busy", "Source busy"
        CLEARED = "cleared", "Condition cleared"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="decisions")
    at = models.DateTimeField(auto_now_add=True)
    source_id = models.CharField(max_length=24)
    source_alias = models.CharField(max_length=300)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    message = models.TextField()
    readings = PlainInsertJSONField(default=dict)
    reroute = models.ForeignKey(Reroute, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["rule", "-id"], name="decision_rule_newest")]

    def __str__(self):
        return f"{self.rule_id} {self.source_alias}: {self.outcome}"


class RuleWatch(models.Model):
    """What one rule remembers of one source between evaluations."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="watches")
    source_id = models.CharField(max_length=24)
    met_since = models.DateTimeField(null=True, blank=True, help_text="Overflow: since when, without a break.")
    cooldown_until = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=20, blank=True)
    last_message = models.TextField(blank=True)
    last_decision = models.ForeignKey(RuleDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "source_id"], name="one_watch_per_rule_and_source")]

    def __str__(self):
        return f"{self.rule_id} watching {self.source_id}"


# API tokens and notifications (issue 12) ------------------------------------------------------


class ApiToken(models.Model):
    """A personal API token: it acts as its owner, with exactly the owner's permissions.

    Only a SHA-256 of the token is kept (a token holds 256 random bits, so a fast hash is enough);
    `prefix` is the visible start that lets people tell their tokens apart.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by_username = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("manage_all_tokens", "Can see and revoke anyone's API tokens")]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class NotificationEvent(models.TextChoices):
    REROUTE_FAILED = "reroute.failed", "A reroute failed"
    REROUTE_SUCCEEDED = "reroute.succeeded", "A reroute succeeded"
    HANDOVER_RUN_ENDED = "handover_run.ended", "A handover run ended"
    RULE_FIRED = "rule.fired", "A failover rule fired"
    RULE_DRY_RUN = "rule.dry_run", "A failover rule would fire (dry run)"
    RULE_NO_TARGET = "rule.no_target", "A failover rule cannot act: no healthy target"


class WebhookEndpoint(models.Model):
    """Where webhooks go: a URL, the secret they are signed with (Standard Webhooks), and which events."""

    class Format(models.TextChoices):
        STANDARD = "standard", "JSON event (Standard Webhooks)"
        SLACK = "slack", "Slack-compatible text"

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, help_text="whsec_… (base64); shown once, when made or renewed.")
    events = models.JSONField(default=list)
    payload_format = models.CharField(max_length=10, choices=Format.choices, default=Format.STANDARD)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_username = models.CharField(max_length=150, blank=True)
    form_key = models.UUIDField(null=True, blank=True, unique=True, editable=False,
                                help_text="The form that made it: that form sent again makes no second one.")

    class Meta:
        ordering = ["name", "id"]
        permissions = [("manage_notifications", "Can set up webhooks and emails, and read their delivery log")]

    def __str__(self):
        return self.name


class EmailSubscription(models.Model):
    """A user who gets an email about these events (through Django's mail settings)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="notification_emails")
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self):
        return f"Email to {self.user}"


class Delivery(models.Model):
    """One event for one webhook endpoint or one email address, and where its sending stands.

    The body is written once, so that every attempt sends the same bytes under the same webhook-id.
    """

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "Email"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Gave up"

    message_id = models.CharField(max_length=40, help_text="The webhook-id header: the same on every attempt.")
    event_type = models.CharField(max_length=30, choices=NotificationEvent.choices)
    about = models.CharField(max_length=200, help_text="What the event is about, e.g. “Reroute #12”.")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    endpoint = models.ForeignKey(WebhookEndpoint, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="deliveries")
    destination = models.CharField(max_length=500, help_text="The URL or email address, as it was.")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    resend_by_username = models.CharField(max_length=150, blank=True,
                                          help_text="Who asked to send it again, until that attempt is made.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self):
        return f"{self.event_type} to {self.destination}"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    requested_by_username = models.CharField(max_length=150, blank=True, help_text="Set for “send again”.")

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self):
        return f"Attempt {self.number} of {self.delivery_id}"


class NotifierState(models.Model):
    """The delivery pump's lease (one row): at most one worker process sends notifications at a time,
    so that a slow receiver can hold one process, never the reroutes' ones."""

    SINGLETON = 1
    lease_owner = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    wake_requested = models.BooleanField(default=False, help_text="New deliveries since the pump last looked.")

    def __str__(self):
        return "Notification sender"
