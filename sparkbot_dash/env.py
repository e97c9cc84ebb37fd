"""Read settings from the environment; a bad value stops start-up with a sentence naming it."""

import logging
import math
import os
import zoneinfo
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def _bad(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name} must be {expected}; got {value!r}.")


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_str_or_default(name: str, default: str) -> str:
    """Like env_str, but an empty value means the default too."""
    return _raw(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(name, value, "true or false")


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise _bad(name, value, "a number") from None
    if not math.isfinite(number) or number < minimum:
        raise _bad(name, value, f"a finite number of at least {minimum:g}")
    return number


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(name, value, "a whole number") from None
    if number < minimum:
        raise _bad(name, value, f"a whole number of at least {minimum}")
    return number


def env_list(name: str, default: list[str], *, empty_ok: bool = False) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items and not empty_ok:
        raise ImproperlyConfigured(f"{name} must list at least one value, separated by commas.")
    return items


def env_pair(name: str) -> tuple[str, str] | None:
    """Two comma-separated values, e.g. SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https; unset: None."""
    value = _raw(name)
    if not value:
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise _bad(name, value, "two values separated by a comma, e.g. HTTP_X_FORWARDED_PROTO,https")
    return parts[0], parts[1]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str_or_default(name, default)
    if value.upper() not in choices:
        raise _bad(name, value, f"one of {', '.join(choices)}")
    return value.upper()


def env_log_level(name: str, default: str) -> str:
    return env_choice(name, default, tuple(logging.getLevelNamesMapping()))


def env_time_zone(name: str, default: str) -> str:
    value = env_str_or_default(name, default)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _bad(name, value, "an IANA time zone such as Europe/London") from None
    return value


def _hidden_password(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def env_url(name: str, default: str, *, schemes: tuple[str, ...], needs_host: bool = True) -> str:
    value = _raw(name)
    if value is None or value == "":
        return default
    parsed = urlparse(value)
    try:
        parsed.port  # raises ValueError for a port out of range
    except ValueError:
        raise _bad(name, _hidden_password(value), "a URL with a valid port") from None
    has_place = parsed.hostname if needs_host and parsed.scheme not in ("sqlite", "unix") else parsed.path
    if parsed.scheme not in schemes or not has_place:
        expected = f"a URL starting with {' or '.join(s + '://' for s in schemes)}"
        raise _bad(name, _hidden_password(value), expected + (" and naming a host" if needs_host else ""))
    return value


def env_database(name: str, default: str) -> dict:
    import dj_database_url

    url = env_url(name, default, schemes=("sqlite", "postgres", "postgresql"))
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as error:
        raise _bad(name, _hidden_password(url), f"a database URL ({error})") from None
    if config["ENGINE"].endswith("sqlite3"):
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        # Values sent apart from the SQL, so a statement run five times on a connection is prepared
        # and PostgreSQL stops planning it anew (~0.3 ms for a write to the reroutes' table with its
        # indexes; docs/PERFORMANCE.md). A pooler in front of PostgreSQL must keep prepared
        # statements per session (PgBouncer 1.21+ with max_prepared_statements, or session mode).
        config.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
    return config


def env_seconds_list(name: str, default: str) -> list[float]:
    """Waits in seconds, separated by commas, e.g. 5,300,1800."""
    raw = env_list(name, default.split(","))
    try:
        delays = [float(item) for item in raw]
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be seconds separated by commas, e.g. {default}.") from None
    if any(delay < 0 for delay in delays):
        raise ImproperlyConfigured(f"{name} must not hold a negative wait.")
    return delays
