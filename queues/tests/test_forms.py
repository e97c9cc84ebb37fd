import uuid

import pytest

from queues import devices
from queues.forms import GONE, CHOOSE, RerouteForm
from sparkbot_sandbox.seed import DISABLED_DEVICE, MISSING_DEVICE, MYSTERY_DEVICE, OFFLINE_DEVICE, SALES_3, SALES_4


def form(**data) -> RerouteForm:
    return RerouteForm({"idempotency_key": str(uuid.uuid4()), **data}, devices=devices.device_list())


def test_it_accepts_two_listed_numbers_and_gives_back_devices(sandbox):
    bound = form(source=SALES_3, target=SALES_4, note="  night shift  ")
    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["source"].alias == "Sales-3"
    assert bound.cleaned_data["target"].id == SALES_4
    assert bound.cleaned_data["note"] == "night shift"


def test_it_accepts_a_usable_target_that_is_offline_now(sandbox):
    assert form(source=SALES_3, target=OFFLINE_DEVICE).is_valid()


@pytest.mark.parametrize("source, target, field, message", [
    ("", SALES_4, "source", CHOOSE),
    (SALES_3, "", "target", CHOOSE),
    ("not-an-id", SALES_4, "source", CHOOSE),
    ("65a00000000000000000000Z", SALES_4, "source", CHOOSE),
    (SALES_3, "65a0000000000000000000031", "target", "Ensure this value has at most 24 characters (it has 25)."),
    (MISSING_DEVICE, SALES_4, "source", GONE),
    (SALES_3, SALES_3, "target", "Choose a target number different from the source number."),
])
def test_it_explains_each_bad_choice(sandbox, source, target, field, message):
    bound = form(source=source, target=target)
    assert not bound.is_valid()
    assert bound.errors[field] == [message]


@pytest.mark.parametrize("target, status", [(DISABLED_DEVICE, "disabled"), (MYSTERY_DEVICE, "mystery")])
def test_it_refuses_a_target_that_cannot_receive(sandbox, target, status):
    bound = form(source=SALES_3, target=target)
    assert not bound.is_valid()
    assert bound.errors["target"][0].endswith(f"cannot receive a queue: its SparkBot status is “{status}”.")


def test_it_limits_the_note(sandbox):
    bound = form(source=SALES_3, target=SALES_4, note="x" * 501)
    assert not bound.is_valid()
    assert bound.errors["note"] == ["Ensure this value has at most 500 characters (it has 501)."]


def test_it_needs_a_valid_idempotency_key(sandbox):
    bound = RerouteForm({"source": SALES_3, "target": SALES_4, "idempotency_key": "nope"},
                        devices=devices.device_list())
    assert not bound.is_valid() and "idempotency_key" in bound.errors
