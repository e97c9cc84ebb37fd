"""What a lead sees before pressing Reroute: both numbers' state and queue, and plain-words warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from . import devices, pickers
from .models import Reroute
from .pickers import Reading
from .sparkbot import Device, QueueStats, SparkBotError

HELD = {"pause": "paused", "freeze": "frozen"}


@dataclass(frozen=True)
class Side:
    """One number of the move: its state, and its queue read now (or the monitor's last reading)."""

    device: Device
    stats: QueueStats | None
    problem: str = ""  # why the queue could not be read now
    reading: Reading | None = None

    @property
    def state(self) -> str:
        return pickers.state_words(self.device)

    @property
    def total(self) -> int | None:
        if self.stats is not None:
            return self.stats.total
        return self.reading.total if self.reading else None

    @property
    def queue_status(self) -> str:
        if self.stats is not None:
            return self.stats.status or ""
        return self.reading.status if self.reading else ""


@dataclass(frozen=True)
class Warning:
    code: str
    sentence: str
    reroute: Reroute | None = None  # a reroute the sentence is about, linked on the page


@dataclass(frozen=True)
class Preview:
    source: Side
    target: Side | None
    warnings: list[Warning] = field(default_factory=list)


def reroute_preview(*, source: Device, target: Device | None) -> Preview:
    """Read both queues now and say, in plain words, what deserves a second look before the move."""
    source_side = _side(source)
    target_side = _side(target) if target else None
    warnings = _source_warnings(source_side)
    if target_side:
        warnings += _target_warnings(target_side, source_side)
    return Preview(source=source_side, target=target_side, warnings=warnings)


def _side(device: Device) -> Side:
    try:
        return Side(device, devices.queue_stats(device_id=device.id))
    except SparkBotError as error:
        return Side(device, None, problem=error.describe(), reading=pickers.readings().get(device.id))


def _source_warnings(source: Side) -> list[Warning]:
    alias, warnings = source.device.alias, []
    busy = _active_reroute(source.device.id)
    if busy:
        warnings.append(Warning("source_busy", f"{alias} is already being rerouted (reroute #{busy.pk} to "
                                f"{busy.target_alias}); a second reroute waits until it ends.", busy))
    if source.total == 0:
        warnings.append(Warning("source_empty", f"{alias} has no queued messages: a reroute would move nothing."))
    held = HELD.get(source.queue_status)
    if held:
        warnings.append(Warning(f"source_{held}", f"The queue of {alias} is {held} (its status is "
                                f"“{source.queue_status}”): someone stopped its delivery on purpose. Check with "
                                "them before moving it."))
    return warnings


def _target_warnings(target: Side, source: Side) -> list[Warning]:
    alias, warnings = target.device.alias, []
    if not target.device.is_usable:
        warnings.append(Warning("target_unusable", f"{alias} cannot receive a queue: its SparkBot status is "
                                f"“{target.device.status}”."))
    elif not target.device.can_deliver:
        warnings.append(Warning("target_cannot_deliver", f"{alias} cannot deliver now (its WhatsApp session is "
                                f"{target.device.session_status}): the messages would wait on it until it is "
                                "back online."))
    threshold = settings.REROUTE_WARN_TARGET_MESSAGES
    if target.total is not None and target.total >= threshold:
        moving = f"the {source.total} from {source.device.alias}" if source.total else "those moved to it"
        warnings.append(Warning("target_busy", f"{alias} already holds {target.total} queued messages; "
                                f"{moving} would wait behind them."))
    moving_away = _active_reroute(target.device.id)
    if moving_away:
        warnings.append(Warning("target_moving", f"{alias} is itself being rerouted right now (reroute "
                                f"#{moving_away.pk} to {moving_away.target_alias}): messages moved to it may "
                                "move on again.", moving_away))
    return warnings


def _active_reroute(device_id: str) -> Reroute | None:
    return Reroute.objects.filter(source_id=device_id, status__in=Reroute.ACTIVE).first()
