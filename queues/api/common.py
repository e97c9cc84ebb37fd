"""Helpers the endpoints share: the device list, links, and turning records into answers."""

from __future__ import annotations

from django.urls import reverse

from .. import devices
from ..devices import DeviceList
from ..models import Reroute
from ..sparkbot import SparkBotError
from .problems import Problem

COUNT_FIELDS = ("status", "total", "pending", "processing", "scheduled")


def device_list_or_503() -> DeviceList:
    try:
        return devices.device_list()
    except devices.DeviceListLoading as loading:
        raise Problem(503, "device-list-unavailable", loading.describe(), headers={"Retry-After": "5"})
    except SparkBotError as error:
        raise Problem(503, "device-list-unavailable", "The device list could not be loaded from SparkBot. "
                      f"{error.describe()}", headers={"Retry-After": "5"})


def absolute(request, name: str, *args) -> str:
    return request.build_absolute_uri(reverse(name, args=args))


def reroute_url(request, pk: int) -> str:
    return absolute(request, "api:reroute", pk)


def number_ref(id_: str, alias: str, phone: str) -> dict:
    return {"id": id_, "alias": alias, "phone": phone}


def counts(stats: dict | None) -> dict | None:
    return {name: stats.get(name) for name in COUNT_FIELDS} if stats else None


def reroute_summary(request, reroute: Reroute) -> dict:
    """Only the history page's columns (history.PAGE_COLUMNS), so that a page is one query."""
    return {
        "id": reroute.pk, "url": reroute_url(request, reroute.pk), "status": reroute.status,
        "origin": reroute.origin, "requested_by": reroute.requested_by_username,
        "created_at": reroute.created_at, "ended_at": reroute.ended_at,
        "source": number_ref(reroute.source_id, reroute.source_alias, reroute.source_phone),
        "target": number_ref(reroute.target_id, reroute.target_alias, reroute.target_phone),
        "note": reroute.note, "messages_moved": reroute.messages_moved, "error_code": reroute.error_code,
        "handover_run": reroute.handover_run_id,
    }


def reroute_result(reroute: Reroute, *, message: str) -> dict:
    """The flat object a workflow branches on."""
    return {
        "ok": reroute.status == Reroute.Status.SUCCEEDED,
        "done": reroute.status in Reroute.ENDED,
        "state": reroute.status,
        "messages_moved": reroute.messages_moved,
        "error_code": reroute.error_code,
        "message": message,
    }
