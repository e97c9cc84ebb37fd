"""Who calls the API: a personal token (Authorization: Bearer …), or a signed-in browser session.

A request that carries an Authorization header is decided by its token alone: a revoked,
expired or unknown token is 401 at once, whatever cookie comes with it. Session calls keep
Django's CSRF check on unsafe methods; token calls need none (no browser sends them by itself).
Token calls are throttled per token: a fixed window of a minute, counted in the cache.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from ninja.security import APIKeyCookie, HttpBearer
from ninja.throttling import BaseThrottle
from ninja.utils import check_csrf

from .. import tokens
from .problems import Problem

logger = logging.getLogger(__name__)
BEARER = {"WWW-Authenticate": 'Bearer realm="sparkbot-dash"'}


def unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", detail, headers=BEARER)


class TokenAuth(HttpBearer):
    """Authorization: Bearer sbd_…: the token's owner, with exactly the owner's permissions."""

    def __call__(self, request):
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise unauthenticated("Send the token as “Authorization: Bearer <token>”.")
        return self.authenticate(request, raw.strip())

    def authenticate(self, request, token):
        found = tokens.token_authenticate(raw=token)
        if found is None:
            raise unauthenticated("This API token is not valid: it is unknown, revoked or expired, or its "
                                  "owner may no longer sign in.")
        request.user = found.owner
        request.api_token = found
        return found.owner


class SessionAuth(APIKeyCookie):
    """The browser's own session (the interactive docs use it); unsafe methods need the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request):
        if "Authorization" in request.headers or not request.user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise Problem(403, "csrf-failed", "This call comes with a browser session but without its CSRF "
                          "token (the X-CSRFToken header); token calls need none.")
        return request.user

    def authenticate(self, request, key):  # __call__ decides; required by the base class
        return request.user if request.user.is_authenticated else None


class TokenThrottle(BaseThrottle):
    """At most API_TOKEN_REQUESTS_PER_MINUTE calls per token in each minute; sessions are not counted."""

    WINDOW = 60

    def __init__(self):
        self._local = threading.local()

    def allow_request(self, request) -> bool:
        token = getattr(request, "api_token", None)
        if token is None:
            return True
        now = time.time()
        window = int(now // self.WINDOW)
        key = f"api:throttle:{token.key_hash[:32]}:{window}"  # the hash, not the id: ids come back in a new database
        try:
            count = _count(key, timeout=self.WINDOW + 5)
        except Exception as error:  # the cache down must not take the API with it
            logger.warning("API throttle not counted (cache unavailable: %s)", type(error).__name__)
            return True
        self._local.wait = (window + 1) * self.WINDOW - now
        return count <= settings.API_TOKEN_REQUESTS_PER_MINUTE

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)


def _count(key: str, *, timeout: int) -> int:
    """Add one to the window's counter: one cache call, except for the first call of a window."""
    try:
        return cache.incr(key)
    except ValueError:  # no counter yet for this window
        if cache.add(key, 1, timeout=timeout):
            return 1
        return cache.incr(key)  # another process made it meanwhile


def require(request, permission: str, what: str) -> None:
    """Refuse (403) unless the caller's account holds the permission; `what` completes “… may not …”."""
    if not request.user.has_perm(permission):
        raise Problem(403, "forbidden", f"Your account may not {what}.")
