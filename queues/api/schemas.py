"""What the API reads and answers, as pydantic schemas (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import StringConstraints

from ..models import Reroute


RerouteState = Literal[tuple(Reroute.Status.values)]
OriginName = Literal[tuple(Reroute.Origin.values)]


# Problems (RFC 9457) -------------------------------------------------------------------------


class ProblemOut(Schema):
    type: str = Field(description="A URN naming the kind of problem, or about:blank.")
    title: str
    status: int
    detail: str = Field(description="What went wrong, in a sentence a person can act on.")
    instance: str | None = None


class CandidateOut(Schema):
    id: str
    alias: str
    phone: str


class FieldErrorOut(Schema):
    field: str = Field(description="The body field, query parameter or header at fault.")
    message: str
    candidates: list[CandidateOut] | None = Field(
        None, description="For a number that is unknown or ambiguous: the numbers it could mean.")


class ValidationProblemOut(ProblemOut):
    errors: list[FieldErrorOut]


class ActiveRerouteOut(Schema):
    id: int
    url: str
    status: RerouteState


class BusyProblemOut(ProblemOut):
    active_reroute: ActiveRerouteOut | None = None


class RunInProgressProblemOut(ProblemOut):
    active_run: dict | None = Field(None, description="{id, url} of the run that has not finished.")


# Reroutes --------------------------------------------------------------------------------------


class RerouteIn(Schema):
    source: str = Field(min_length=1, max_length=300, description="The number whose queue moves: its id, "
                        "phone or alias, as in SparkBot's device list.")
    target: str = Field(min_length=1, max_length=300, description="The number that takes the queue.")
    # spaces around it are dropped before its length counts, as the form does
    note: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        "", max_length=500, description="Why; kept in the audit log.")


class NumberRef(Schema):
    id: str
    alias: str
    phone: str


class QueueCountsOut(Schema):
    status: str | None = None
    total: int | None = None
    pending: int | None = None
    processing: int | None = None
    scheduled: int | None = None


class CountsOut(Schema):
    before: QueueCountsOut | None = Field(None, description="The source's queue when first read.")
    after: QueueCountsOut | None = Field(None, description="The source's queue after the route call.")


class EventOut(Schema):
    at: datetime
    kind: str
    message: str


class ResultOut(Schema):
    """Flat, for a workflow to branch on: poll while `done` is false, then look at `ok`."""

    ok: bool = Field(description="True only when the reroute succeeded.")
    done: bool = Field(description="True once the reroute has ended (succeeded or failed).")
    state: RerouteState
    messages_moved: int | None = Field(description="Messages that left the source; null while running, "
                                       "or when SparkBot's counts could not confirm it.")
    error_code: str = Field(description="Empty on success (or count_unconfirmed); else why it failed: "
                            "unauthorized, forbidden, device_not_found, refused, bad_request, rate_limited, "
                            "unavailable, timeout, connection_failed, unexpected_reply, interrupted, "
                            "queue_unavailable, internal_error.")
    message: str = Field(description="Where it stands, in one sentence.")


class RerouteSummaryOut(Schema):
    id: int
    url: str
    status: RerouteState
    origin: OriginName
    requested_by: str
    created_at: datetime
    ended_at: datetime | None
    source: NumberRef
    target: NumberRef
    note: str
    messages_moved: int | None
    error_code: str
    handover_run: int | None


class RerouteOut(RerouteSummaryOut):
    rule: int | None = Field(description="The failover rule that made it, if one did.")
    started_at: datetime | None
    attempts: int
    counts: CountsOut
    error_message: str
    timeline: list[EventOut]
    result: ResultOut


class RerouteListOut(Schema):
    items: list[RerouteSummaryOut]
    next: str | None = Field(description="The next (older) page, or null on the last one.")
    previous: str | None = Field(description="The previous (newer) page, or null on the newest.")


class RerouteFilters(Schema):
    """The history's filters; every one optional. Pages go newest first; follow `next` and `previous`."""

    date_from: date | None = Field(None, description="First day (the dashboard's time zone), 2000-01-01 on.")
    date_to: date | None = Field(None, description="Last day, included, up to 2999-12-31.")
    device: str | None = Field(None, pattern=r"^\s*[0-9a-fA-F]{24}\s*$", description="A number's id, as "
                               "source or target.")
    user: str | None = Field(None, max_length=150, description="Who asked (username).")
    status: RerouteState | None = None
    origin: OriginName | None = None
    handover: int | None = Field(None, ge=1, le=2**63 - 1, description="A handover run's id.")
    rule: int | None = Field(None, ge=1, le=2**63 - 1, description="A failover rule's id: the reroutes it made.")
    q: str | None = Field(None, max_length=100, description="Text in the note, aliases or phones (3 characters "
                          "at least).")
    before: int | None = Field(None, ge=1, le=2**63 - 1, description="Cursor: the page after this reroute id "
                               "(not with `after`).")
    after: int | None = Field(None, ge=1, le=2**63 - 1, description="Cursor: the page before this reroute id "
                              "(not with `before`).")


# Numbers -----------------------------------------------------------------------------------------


class NumberQueueOut(QueueCountsOut):
    read_at: datetime | None = Field(description="When the monitor last read this queue.")
    read_problem: str = Field(description="Why the last reading failed, if it did.")


class NumberOut(Schema):
    id: str
    alias: str
    phone: str
    account_status: str
    session_status: str
    can_deliver: bool
    state_since: datetime
    listed: bool = Field(description="False once the number left SparkBot's device list.")
    listed_at: datetime
    queue: NumberQueueOut


class NumberDetailOut(NumberOut):
    depth_24h: list[tuple[datetime, int]] = Field(description="Highest queue depth per half hour over the last "
                                                  "day, oldest first: [[the half hour's start (ISO 8601), depth], …].")


class MonitorOut(Schema):
    cycle_ended_at: datetime | None
    paused_until: datetime | None
    pause_reason: str


class NumberListOut(Schema):
    items: list[NumberOut]
    monitor: MonitorOut


# Handovers -------------------------------------------------------------------------------------


class PairOut(Schema):
    position: int
    source_id: str
    target_id: str


class PlanOut(Schema):
    id: int
    name: str
    schedule: Literal["none", "once", "daily"]
    next_run_at: datetime | None
    pause_sources: bool
    in_order: bool
    pairs: list[PairOut]
    unfinished_run: int | None = Field(description="The run of this plan that has not finished, if any.")


class ProgressOut(Schema):
    total: int
    done: int
    succeeded: int
    failed: int
    messages_moved: int
    percent: int


class ItemRerouteOut(Schema):
    id: int
    url: str
    status: RerouteState
    messages_moved: int | None


class RunItemOut(Schema):
    position: int
    source: NumberRef
    target: NumberRef
    status: Literal["waiting", "started", "cancelled", "skipped"]
    waiting_reason: str
    reroute: ItemRerouteOut | None


class RunResultOut(Schema):
    ok: bool = Field(description="True only when the run has ended and every move succeeded.")
    done: bool
    state: Literal["running", "finished", "cancelled"]
    message: str


class RunOut(Schema):
    id: int
    url: str
    plan_id: int | None
    plan_name: str
    status: Literal["running", "finished", "cancelled"]
    trigger: Literal["manual", "schedule"]
    started_by: str
    created_at: datetime
    ended_at: datetime | None
    progress: ProgressOut
    items: list[RunItemOut]
    result: RunResultOut

