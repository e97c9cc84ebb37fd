"""The numbers, as the fleet monitor last saw them (queues/monitor.py writes them; this only reads)."""

from __future__ import annotations

from ninja import Path, Router

from .. import monitor
from ..models import MonitorState, Number
from .problems import Problem
from .schemas import NumberDetailOut, NumberListOut, ProblemOut, ValidationProblemOut
from .security import require

router = Router()
ERRORS = {401: ProblemOut, 403: ProblemOut, 429: ProblemOut}
WHAT = "read the numbers' state"


def number_out(number: Number) -> dict:
    return {
        "id": number.device_id, "alias": number.alias, "phone": number.phone,
        "account_status": number.account_status, "session_status": number.session_status,
        "can_deliver": number.can_deliver, "state_since": number.state_since, "listed": number.listed,
        "listed_at": number.listed_at,
        "queue": {"status": number.queue_status or None, "total": number.queue_total,
                  "pending": number.queue_pending, "processing": number.queue_processing,
                  "scheduled": number.queue_scheduled, "read_at": number.read_at,
                  "read_problem": number.read_problem},
    }


@router.get("", url_name="numbers", response={200: NumberListOut, **ERRORS}, summary="List the numbers",
            operation_id="number_list")
def number_list(request):
    """Every number the monitor knows: its SparkBot state since when, and its queue depth."""
    require(request, "queues.add_reroute", WHAT)
    state = MonitorState.objects.filter(pk=MonitorState.SINGLETON).first()
    return {
        "items": [number_out(n) for n in Number.objects.defer("depth_24h")],
        "monitor": {"cycle_ended_at": state.cycle_ended_at if state else None,
                    "paused_until": state.paused_until if state else None,
                    "pause_reason": state.pause_reason if state else ""},
    }


@router.get("/{device_id}", url_name="number",
            response={200: NumberDetailOut, 404: ProblemOut, 422: ValidationProblemOut, **ERRORS},
            summary="Read one number", operation_id="number_read")
def number_read(request, device_id: str = Path(..., pattern=r"^[0-9a-fA-F]{24}$", description="The number's id.")):
    """One number's state, queue, and its highest queue depth per half hour over the last day."""
    require(request, "queues.add_reroute", WHAT)
    number = Number.objects.filter(device_id=device_id.lower()).first()
    if number is None:
        raise Problem(404, "not-found", "The monitor has not seen a number with this id.")
    return {**number_out(number), "depth_24h": monitor.depth_by_slot_start(number.depth_24h)}
