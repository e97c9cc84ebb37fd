"""Personal API tokens: made, found, used and revoked here; only their SHA-256 is stored.

A token is `sbd_` + 8 visible characters + `_` + 43 secret ones (256 random bits in all). Its
owner's permissions are its permissions; a revoked or expired token, or one whose owner is no
longer active, authenticates nothing from the next request on.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiToken

PREFIX = "sbd_"
LAST_USED_EVERY = timedelta(seconds=60)  # "last used" is written at most once a minute per token


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the whole token: shown once, never stored


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(*, owner, name: str, expires_at: datetime | None = None) -> NewToken:
    visible = secrets.token_hex(4)
    raw = f"{PREFIX}{visible}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(owner=owner, name=name, prefix=f"{PREFIX}{visible}", key_hash=_hash(raw),
                                    expires_at=expires_at)
    return NewToken(token=token, secret=raw)


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The live token this string is, with its owner loaded; None for anything else."""
    if not raw.startswith(PREFIX) or len(raw) > 100:
        return None
    token = ApiToken.objects.select_related("owner").filter(key_hash=_hash(raw)).first()
    if token is None or token.revoked_at is not None or not token.owner.is_active:
        return None
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_revoke(*, token: ApiToken, by) -> bool:
    """Revoke the token; False if it already was."""
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by_username=by.get_username())
    token.refresh_from_db()
    return bool(changed)


def tokens_of(*, user) -> QuerySet:
    return ApiToken.objects.filter(owner=user)


def tokens_all() -> QuerySet:
    return ApiToken.objects.select_related("owner")
