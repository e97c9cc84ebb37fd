"""What the `reroute` and `handover` commands share: who runs them, exit codes, waiting."""

from __future__ import annotations

import argparse
import getpass
import math
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from queues import devices
from queues.sparkbot import SparkBotError

SUCCEEDED, FAILED, REFUSED, STILL_RUNNING = 0, 1, 2, 3
POLL_SECONDS = 0.2


def refused(message: str) -> CommandError:
    return CommandError(message, returncode=REFUSED)


def user_named(username: str | None, *, permission: str, doing: str):
    """The dashboard user the command acts as, or None; refuses an unknown or inactive one, and one whose
    roles do not allow `permission` (the API refuses them too: the audit log names only who may)."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not user.is_active:
        raise refused(f"There is no active dashboard user called “{username}”.")
    if not user.has_perm(permission):
        raise refused(f"“{username}” may not {doing}: no role of theirs allows it.")
    return user


def seconds(text: str) -> float:
    """An argument that is a number of seconds above 0 (not nan: a wait that never ends)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"give a number of seconds above 0, not “{text}”")
    return value


def shell_user() -> str:
    """Who is at the command line, for the audit log when no --user is given."""
    try:
        return f"cli:{getpass.getuser()}"[:150]
    except Exception:  # no login name (e.g. a container without one)
        return "cli"


def device_list():
    try:
        return devices.device_list()
    except devices.DeviceListLoading:  # "still loading" means nothing to a process that ends now
        raise refused(f"SparkBot's device list did not load within {settings.SPARKBOT_DEVICE_WAIT_SECONDS:g} s: "
                      "SparkBot is slow or not answering. Try again in a moment.")
    except SparkBotError as error:
        raise refused(f"The device list could not be loaded from SparkBot. {error.describe()}")


def sleep_until(deadline: float) -> bool:
    """Sleep one poll; False once the deadline has passed."""
    if time.monotonic() >= deadline:
        return False
    time.sleep(POLL_SECONDS)
    return True
