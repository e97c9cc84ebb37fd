"""Reroutes: start one (idempotent, 202), read one (with a flat result to branch on), list them."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Header, Path, Query, Router, Status

from .. import history, services
from ..device_names import Candidate, NameNotResolved, device_resolve
from ..forms import HistoryFilterForm, RerouteForm
from ..models import Reroute
from .common import absolute, counts, device_list_or_503, reroute_result, reroute_summary, reroute_url
from .problems import Problem
from .schemas import (
    BusyProblemOut, ProblemOut, RerouteFilters, RerouteIn, RerouteListOut, RerouteOut, ValidationProblemOut,
)
from .security import require

router = Router()
KEY_NAMESPACE = uuid.UUID("5d0b7a4e-8f57-4f8a-9d55-4a0d2f7a1c11")
ID_MAX = 2**63 - 1
ERRORS = {401: ProblemOut, 403: ProblemOut, 429: ProblemOut}


def _request_key(user, key: str | None) -> uuid.UUID:
    """A client's Idempotency-Key, made the caller's own: two users' equal keys never meet."""
    if key is None:
        return uuid.uuid4()
    return uuid.uuid5(KEY_NAMESPACE, f"api/{user.pk}/{key}")


def _resolve(name: str, field: str, device_list, errors: list) -> str:
    try:
        return device_resolve(name=name, devices=device_list).id
    except NameNotResolved as unresolved:
        errors.append({"field": field, "message": unresolved.sentence,
                       "candidates": [vars(Candidate.of(d)) for d in unresolved.candidates]})
        return ""


def _invalid(errors: list) -> Problem:
    return Problem(422, "invalid", "The reroute was not started: see errors.", errors=errors)


@router.post("", url_name="reroutes", response={202: RerouteOut, 400: ProblemOut, 409: BusyProblemOut,
                                               422: ValidationProblemOut, 503: ProblemOut, **ERRORS},
             summary="Start a reroute", operation_id="reroute_create")
def reroute_create(request, response: HttpResponse, body: RerouteIn,
                   idempotency_key: str | None = Header(None, alias="Idempotency-Key", min_length=1,
                                                        max_length=255)):
    """Move the queued messages of `source` to `target`: answered at once (202), carried out by a worker.

    Numbers are named by id, phone or alias. The same `Idempotency-Key` with the same body
    always answers with the same reroute; with another body it is refused (409).
    """
    require(request, "queues.add_reroute", "reroute queues")
    key = _request_key(request.user, idempotency_key)
    try:
        reroute = services.reroute_sent_again(idempotency_key=key, user=request.user, origin=Reroute.Origin.API,
                                              source=body.source, target=body.target,
                                              note=body.note) if idempotency_key else None
    except services.KeyReused:
        raise _key_reused()
    if reroute is None:
        reroute = _reroute_new(request, body, key)
    response["Location"] = reroute_url(request, reroute.pk)
    return Status(202, reroute_detail(request, reroute))


def _key_reused() -> Problem:
    return Problem(409, "idempotency-key-reused", "This Idempotency-Key was already used for a different "
                   "request; send a new key for a new reroute.")


def _reroute_new(request, body: RerouteIn, key: uuid.UUID) -> Reroute:
    device_list = device_list_or_503()
    errors = []
    source_id = _resolve(body.source, "source", device_list, errors)
    target_id = _resolve(body.target, "target", device_list, errors)
    if errors:
        raise _invalid(errors)
    form = RerouteForm({"source": source_id, "target": target_id, "note": body.note, "idempotency_key": str(key)},
                       devices=device_list)
    if not form.is_valid():
        raise _invalid([{"field": name, "message": message} for name, messages in form.errors.items()
                        for message in messages])
    data = form.cleaned_data
    try:
        return services.reroute_request(source=data["source"], target=data["target"], note=data["note"],
                                        user=request.user, origin=Reroute.Origin.API, idempotency_key=key)
    except services.SourceBusy as busy:
        active = busy.active
        raise Problem(409, "source-busy", f"{active.source_alias} is already being rerouted: reroute #{active.pk} "
                      f"is {active.get_status_display().lower()}. Wait for it to end.",
                      active_reroute={"id": active.pk, "url": reroute_url(request, active.pk),
                                      "status": active.status})
    except services.KeyReused:  # the same key, sent meanwhile with another body, made its reroute first
        raise _key_reused()


@router.get("/{int:reroute_id}", url_name="reroute",
            response={200: RerouteOut, 404: ProblemOut, 422: ValidationProblemOut, **ERRORS},
            summary="Read one reroute", operation_id="reroute_read")
def reroute_read(request, reroute_id: int = Path(..., ge=1, le=ID_MAX)):
    """Its status, queue counts before and after, timeline, and `result`: poll until `result.done`."""
    reroute = get_object_or_404(Reroute, pk=reroute_id)
    if reroute.requested_by_id != request.user.pk and not request.user.has_perm("queues.view_all_reroutes"):
        raise Problem(403, "forbidden", "Your account may read only the reroutes it asked for.")
    return reroute_detail(request, reroute)


def reroute_detail(request, reroute: Reroute) -> dict:
    story = history.reroute_story(reroute=reroute)
    message = reroute.outcome if reroute.status in Reroute.ENDED else (
        story.events[-1].message if story.events else "Waiting for a worker.")
    return {
        **reroute_summary(request, reroute),
        "rule": reroute.rule_id, "started_at": reroute.started_at, "attempts": reroute.attempts,
        "counts": {"before": counts(reroute.stats_before), "after": counts(reroute.stats_after)},
        "error_message": reroute.error_message,
        "timeline": [{"at": e.at, "kind": e.kind, "message": e.message} for e in story.events],
        "result": reroute_result(reroute, message=message),
    }


@router.get("", url_name="reroutes", response={200: RerouteListOut, 422: ValidationProblemOut, **ERRORS},
            summary="List reroutes (the history)", operation_id="reroute_list")
def reroute_list(request, filters: Query[RerouteFilters]):
    """Every reroute, newest first, 50 a page, narrowed by the history's filters; `next` and
    `previous` are the links to the neighbouring pages (keyset cursors, stable while rows arrive)."""
    require(request, "queues.view_all_reroutes", "read every reroute (the history)")
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        errors = [{"field": name, "message": message} for name, messages in form.errors.items()
                  for message in messages]
        raise Problem(422, "invalid", "The filters are not valid; see errors.", errors=errors)
    page = history.history_page(filters=form.filters(), before=form.cleaned_data["before"],
                                after=form.cleaned_data["after"], size=history.PAGE_SIZE)
    base = absolute(request, "api:reroutes")
    return {
        "items": [reroute_summary(request, row) for row in page.rows],
        "next": base + form.query(before=page.older) if page.older else None,
        "previous": base + form.query(after=page.newer) if page.newer else None,
    }
