"""Settings start-up: a bad environment value stops it with a sentence naming the variable.

Each case starts Django in a fresh process with a clean environment (only PATH, SECRET_KEY,
a temporary SPARKBOT_DASH_VAR_DIR and the variables of the case).
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "settings-test-secret-key-not-a-real-one"
SETUP = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'sparkbot_dash.settings'); "
         "django.setup()")
SHOW = SETUP + """
import json
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "DATABASE": {k: str(v) for k, v in s.DATABASES["default"].items() if k in ("ENGINE", "NAME", "HOST", "PORT")},
    "CACHE_BACKEND": s.CACHES["default"]["BACKEND"],
    "CACHE_LOCATION": s.CACHES["default"].get("LOCATION", ""),
    "BROKER_URL": s.CELERY_BROKER_URL,
    "BROKER_OPTIONS": s.CELERY_BROKER_TRANSPORT_OPTIONS,
    "STATIC_ROOT": str(s.STATIC_ROOT),
    "SPARKBOT_API_URL": s.SPARKBOT_API_URL,
    "SPARKBOT_TIMEOUT": s.SPARKBOT_TIMEOUT,
    "SPARKBOT_MAX_ATTEMPTS": s.SPARKBOT_MAX_ATTEMPTS,
    "SECRET_KEY": s.SECRET_KEY,
    "AUDIT_CHAIN_KEY": s.AUDIT_CHAIN_KEY,
    **{name: getattr(s, name) for name in (
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER")},
}))
"""


def start(tmp_path: Path, code: str = SETUP, **env: str | None) -> subprocess.CompletedProcess:
    """Start Django with SECRET_KEY and a temporary var dir, plus `env` (None = unset)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SECRET_KEY": SECRET_KEY,
            "SPARKBOT_DASH_VAR_DIR": str(tmp_path / "var")}
    merged = {name: value for name, value in {**base, **env}.items() if value is not None}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=merged,
                          capture_output=True, text=True, timeout=60)


def show(tmp_path: Path, **env: str | None) -> dict:
    result = start(tmp_path, SHOW, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


BAD = [
    ({"DEBUG": "maybe"}, "DEBUG"),
    ({"SESSION_COOKIE_SECURE": "sometimes"}, "SESSION_COOKIE_SECURE"),
    ({"SPARKBOT_TIMEOUT": "abc"}, "SPARKBOT_TIMEOUT"),
    ({"SPARKBOT_TIMEOUT": "-1"}, "SPARKBOT_TIMEOUT"),
    ({"SPARKBOT_TIMEOUT": "nan"}, "SPARKBOT_TIMEOUT"),
    ({"SPARKBOT_MAX_ATTEMPTS": "0"}, "SPARKBOT_MAX_ATTEMPTS"),
    ({"SPARKBOT_MAX_ATTEMPTS": "x"}, "SPARKBOT_MAX_ATTEMPTS"),
    ({"SPARKBOT_MAX_ATTEMPTS": "2.5"}, "SPARKBOT_MAX_ATTEMPTS"),
    ({"SPARKBOT_DEVICE_CACHE_SECONDS": "0"}, "SPARKBOT_DEVICE_CACHE_SECONDS"),
    ({"SPARKBOT_RETRY_BASE_SECONDS": "-0.5"}, "SPARKBOT_RETRY_BASE_SECONDS"),
    ({"REROUTE_STUCK_AFTER_SECONDS": "5"}, "REROUTE_STUCK_AFTER_SECONDS"),
    ({"REROUTE_STUCK_AFTER_SECONDS": "60", "SPARKBOT_TIMEOUT": "30"}, "REROUTE_STUCK_AFTER_SECONDS"),
    ({"REROUTE_SWEEP_SECONDS": "0"}, "REROUTE_SWEEP_SECONDS"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
    ({"DATABASE_URL": "postgres://u@db:notaport/name"}, "DATABASE_URL"),
    ({"REDIS_URL": "http://x"}, "REDIS_URL"),
    ({"SPARKBOT_API_URL": "ftp://x"}, "SPARKBOT_API_URL"),
    ({"SPARKBOT_API_KEY": "tooshortkey"}, "SPARKBOT_API_KEY"),
    ({"SPARKBOT_API_KEY": "k" * 201}, "SPARKBOT_API_KEY"),
    ({"SECRET_KEY": None}, "SECRET_KEY"),
    ({"SECRET_KEY": "  ", "DEBUG": "false"}, "SECRET_KEY"),
    ({"AUDIT_CHAIN_KEY": "too-short-for-a-key"}, "AUDIT_CHAIN_KEY"),
    ({"SIGN_IN_ADDRESS_FAILURE_LIMIT": "3", "SIGN_IN_FAILURE_LIMIT": "5"}, "SIGN_IN_ADDRESS_FAILURE_LIMIT"),
    ({"TRUST_X_FORWARDED_FOR": "maybe"}, "TRUST_X_FORWARDED_FOR"),
]


# Values that once slipped through, or stopped start-up without naming the variable.
ONCE_MISSED = [
    ({"SPARKBOT_API_URL": "http:/sandbox:8900/v1"}, "SPARKBOT_API_URL"),
    ({"SPARKBOT_API_URL": "http:///v1"}, "SPARKBOT_API_URL"),
    ({"REDIS_URL": "redis:/redis:6379/0"}, "REDIS_URL"),
    ({"REDIS_URL": "redis://h:99999/0"}, "REDIS_URL"),
    ({"SPARKBOT_TIMEOUT": "inf"}, "SPARKBOT_TIMEOUT"),
    ({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
    ({"TIME_ZONE": "Mars/Olympus_Mons"}, "TIME_ZONE"),
]


@pytest.mark.parametrize("env, name", [*BAD, *ONCE_MISSED])
def test_it_stops_start_up_on_a_bad_value_with_a_sentence_naming_it(tmp_path, env, name):
    result = start(tmp_path, **env)
    assert result.returncode != 0, f"{env} did not stop start-up"
    line = last_line(result.stderr)
    prefix = "django.core.exceptions.ImproperlyConfigured: "
    assert line.startswith(prefix), f"not a settings error: {line!r}"
    sentence = line.removeprefix(prefix)
    assert name in sentence
    assert sentence.endswith(".") and len(sentence.split()) >= 4, f"not a sentence: {sentence!r}"
    secret = (env.get(name) or "").strip() if name.endswith("_KEY") else ""
    if secret:
        assert secret not in sentence, "a key must never be echoed"


@pytest.mark.parametrize("env", [{"DATABASE_URL": "mysql://app:hunter2-secret@db/app"},
                                 {"REDIS_URL": "https://:hunter2-secret@cache:6379/0"}])
def test_it_never_echoes_a_password_from_a_bad_url(tmp_path, env):
    result = start(tmp_path, **env)
    assert result.returncode != 0
    assert "hunter2-secret" not in result.stderr


def test_it_starts_on_the_embedded_defaults(tmp_path):
    settings = show(tmp_path)
    var = (tmp_path / "var").resolve()
    assert settings["DEBUG"] is False
    assert settings["DATABASE"]["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(settings["DATABASE"]["NAME"]).parent == var
    assert settings["CACHE_BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert settings["BROKER_URL"] == "filesystem://"
    options = settings["BROKER_OPTIONS"]
    assert options["data_folder_in"] == options["data_folder_out"]
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        folder = Path(options[key])
        assert folder.is_absolute() and folder.is_relative_to(var), f"{key}: {folder}"
    assert options["polling_interval"] <= 0.05
    assert Path(settings["STATIC_ROOT"]).is_relative_to(var)
    assert settings["SPARKBOT_API_URL"] == "http://127.0.0.1:8900/v1"
    assert (settings["SPARKBOT_TIMEOUT"], settings["SPARKBOT_MAX_ATTEMPTS"]) == (10.0, 5)


def test_it_selects_redis_for_broker_and_cache_when_redis_url_is_set(tmp_path):
    settings = show(tmp_path, REDIS_URL="redis://127.0.0.1:6379/15")
    assert settings["BROKER_URL"] == "redis://127.0.0.1:6379/15"
    assert settings["CACHE_BACKEND"] == "django_redis.cache.RedisCache"
    assert settings["CACHE_LOCATION"] == "redis://127.0.0.1:6379/15"
    assert "data_folder_in" not in settings["BROKER_OPTIONS"]


def test_it_selects_postgres_when_database_url_is_set(tmp_path):
    settings = show(tmp_path, DATABASE_URL="postgres://app:pw@db.internal:5433/sparkbot")
    assert settings["DATABASE"] == {"ENGINE": "django.db.backends.postgresql", "NAME": "sparkbot",
                                    "HOST": "db.internal", "PORT": "5433"}


def test_it_starts_without_secret_key_in_debug(tmp_path):
    assert show(tmp_path, SECRET_KEY=None, DEBUG="true")["DEBUG"] is True


def test_it_reads_empty_numbers_and_urls_as_their_defaults(tmp_path):
    settings = show(tmp_path, SPARKBOT_TIMEOUT="", SPARKBOT_MAX_ATTEMPTS="", SPARKBOT_API_URL="", REDIS_URL="")
    assert (settings["SPARKBOT_TIMEOUT"], settings["SPARKBOT_MAX_ATTEMPTS"]) == (10.0, 5)
    assert settings["SPARKBOT_API_URL"] == "http://127.0.0.1:8900/v1"
    assert settings["BROKER_URL"] == "filesystem://"



# --- HTTPS by default -------------------------------------------------------------------

HTTPS_DEFAULTS = {
    "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": False,
}


def https_settings(settings: dict) -> dict:
    return {name: settings[name] for name in HTTPS_DEFAULTS}


def test_it_is_secure_by_default_with_debug_off(tmp_path):
    settings = show(tmp_path)
    assert https_settings(settings) == HTTPS_DEFAULTS
    assert settings["SECURE_PROXY_SSL_HEADER"] is None  # trusting a header is for a proxy that sets it


def test_it_turns_each_https_default_off_from_the_environment(tmp_path):
    settings = show(tmp_path, SESSION_COOKIE_SECURE="false", CSRF_COOKIE_SECURE="false", SECURE_SSL_REDIRECT="false",
                    SECURE_HSTS_SECONDS="0", SECURE_HSTS_INCLUDE_SUBDOMAINS="false", SECURE_HSTS_PRELOAD="true",
                    SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    assert https_settings(settings) == {
        "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False, "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0, "SECURE_HSTS_INCLUDE_SUBDOMAINS": False, "SECURE_HSTS_PRELOAD": True,
    }
    assert settings["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_it_serves_plain_http_in_debug(tmp_path):
    settings = show(tmp_path, DEBUG="true")
    assert not any(https_settings(settings).values())


# --- secrets kept under the var dir ------------------------------------------------------

def test_it_reads_secret_key_from_the_var_dir_when_the_environment_has_none(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text("a-key-that-make-setup-kept-in-the-var-dir-0123456789\n")
    assert show(tmp_path, SECRET_KEY=None)["SECRET_KEY"] == "a-key-that-make-setup-kept-in-the-var-dir-0123456789"
    assert show(tmp_path)["SECRET_KEY"] == SECRET_KEY  # the environment wins


def test_it_writes_a_secret_key_once_in_debug_and_keeps_it(tmp_path):
    first = show(tmp_path, SECRET_KEY=None, DEBUG="true")["SECRET_KEY"]
    path = tmp_path / "var" / "secret_key"
    assert path.read_text().strip() == first and len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert show(tmp_path, SECRET_KEY=None, DEBUG="true")["SECRET_KEY"] == first
    assert show(tmp_path, SECRET_KEY=None)["SECRET_KEY"] == first  # and production reads it too


def test_it_refuses_production_without_secret_key_or_its_file_and_writes_none(tmp_path):
    result = start(tmp_path, SECRET_KEY=None)
    assert result.returncode != 0
    sentence = last_line(result.stderr).removeprefix("django.core.exceptions.ImproperlyConfigured: ")
    assert "SECRET_KEY" in sentence and str(tmp_path / "var" / "secret_key") in sentence and "make setup" in sentence
    assert not (tmp_path / "var" / "secret_key").exists()


def test_it_keeps_one_audit_chain_key_under_the_var_dir(tmp_path):
    first = show(tmp_path)["AUDIT_CHAIN_KEY"]
    path = tmp_path / "var" / "audit_chain_key"
    assert path.read_text().strip() == first and len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert show(tmp_path, DEBUG="true")["AUDIT_CHAIN_KEY"] == first


def test_it_reads_audit_chain_key_from_the_environment_and_writes_no_file(tmp_path):
    key = "an-audit-chain-key-from-the-environment-0123456789"
    assert show(tmp_path, AUDIT_CHAIN_KEY=key)["AUDIT_CHAIN_KEY"] == key
    assert not (tmp_path / "var" / "audit_chain_key").exists()


def test_it_gives_processes_that_start_together_one_secret_of_each_kind(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DEBUG": "true",
           "SPARKBOT_DASH_VAR_DIR": str(tmp_path / "var")}
    processes = [subprocess.Popen([sys.executable, "-c", SHOW], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        answers.append(json.loads(out))
    assert len({answer["SECRET_KEY"] for answer in answers}) == 1
    assert len({answer["AUDIT_CHAIN_KEY"] for answer in answers}) == 1
    assert sorted(path.name for path in (tmp_path / "var").iterdir()) == ["audit_chain_key", "secret_key"]
