"""Sign-in limits on top of django-axes, and the lockout page (settings AXES_*_CALLABLE, AXES_FAILURE_LIMIT).

Axes counts failures per username and address and locks that pair at SIGN_IN_FAILURE_LIMIT; a sign-in
resets only that pair. On top of that, an address whose failures across all usernames reach
SIGN_IN_ADDRESS_FAILURE_LIMIT is locked for every username (password spraying). As in axes, a pair's
failures count until SIGN_IN_LOCKOUT_MINUTES after its latest failure, and a try while locked counts too.
"""

import ipaddress
import math
from datetime import datetime, timedelta

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.shortcuts import render
from django.utils import timezone


def client_address(request) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the connecting address, or, behind a proxy trusted to set X-Forwarded-For,
    the address that proxy added last (earlier entries are whatever the client sent)."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        if _is_address(forwarded):
            return forwarded
    return request.META.get("REMOTE_ADDR")


def failure_limit(request, credentials) -> int:
    """AXES_FAILURE_LIMIT: the failures one username may have from one address; none at all while the
    address itself is locked."""
    if _address_locked_until(request) is not None:
        return 0
    return settings.SIGN_IN_FAILURE_LIMIT


def lockout_response(request, original_response, credentials):
    """AXES_LOCKOUT_CALLABLE: the lockout page, saying until when, in the dashboard's time zone."""
    address_until = _address_locked_until(request)
    rows = _recent_failures(request, username=get_client_username(request, credentials),
                            ip_address=_address(request))
    account_until = _locked_until(rows, settings.SIGN_IN_FAILURE_LIMIT, get_cool_off(request))
    ends = max((end for end in (address_until, account_until) if end), default=None)
    context = {"address_locked": address_until is not None, "locked_until": _next_minute(ends),
               "time_zone": timezone.get_current_timezone_name()}
    response = render(request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
    if ends:
        response["Retry-After"] = str(max(1, math.ceil((ends - _now(request)).total_seconds())))
    return response


def _address_locked_until(request) -> datetime | None:
    rows = _recent_failures(request, ip_address=_address(request))
    return _locked_until(rows, settings.SIGN_IN_ADDRESS_FAILURE_LIMIT, get_cool_off(request))


def _recent_failures(request, **where) -> list[tuple[datetime, int]]:
    """(latest failure, failures) of each recorded attempt matching `where` that still counts, oldest first."""
    since = _now(request) - get_cool_off(request)
    attempts = AccessAttempt.objects.filter(attempt_time__gte=since, **where).order_by("attempt_time")
    return list(attempts.values_list("attempt_time", "failures_since_start"))


def _locked_until(rows: list[tuple[datetime, int]], limit: int, cool_off: timedelta) -> datetime | None:
    """When the failures in `rows` drop below `limit` as their attempts age out; None if they are below it."""
    remaining = sum(failures for _at, failures in rows)
    for at, failures in rows:
        if remaining < limit:
            break
        remaining -= failures
        if remaining < limit:
            return at + cool_off
    return None


def _address(request) -> str | None:
    return getattr(request, "axes_ip_address", None) or client_address(request)


def _now(request) -> datetime:
    return getattr(request, "axes_attempt_time", None) or timezone.now()


def _next_minute(moment: datetime | None) -> datetime | None:
    """Rounded up, so that whoever tries again at the minute shown is not locked out again."""
    if moment is None or not (moment.second or moment.microsecond):
        return moment
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
