"""The API's and the notifications' settings: defaults, and a bad value stops start-up naming it."""

import json

import pytest

from tests.test_settings import SETUP, last_line, start

SHOW = SETUP + """
import json
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in (
    "API_TOKEN_REQUESTS_PER_MINUTE", "SITE_URL", "NOTIFY_TIMEOUT_SECONDS", "NOTIFY_CONCURRENCY",
    "NOTIFY_TICK_SECONDS", "NOTIFY_RETRY_DELAYS", "NOTIFY_GIVE_UP_HOURS", "EMAIL_BACKEND")}))
"""


def test_it_starts_with_standard_webhooks_retry_schedule_and_mail_to_the_log(tmp_path):
    result = start(tmp_path, SHOW)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "API_TOKEN_REQUESTS_PER_MINUTE": 300, "SITE_URL": "http://127.0.0.1:8000", "NOTIFY_TIMEOUT_SECONDS": 5.0,
        "NOTIFY_CONCURRENCY": 8, "NOTIFY_TICK_SECONDS": 10.0,
        "NOTIFY_RETRY_DELAYS": [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0], "NOTIFY_GIVE_UP_HOURS": 24.0,
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}


def test_it_sends_mail_by_smtp_once_a_mail_server_is_named(tmp_path):
    result = start(tmp_path, SHOW, EMAIL_HOST="smtp.example.com", SITE_URL="https://router.example.com/")
    shown = json.loads(result.stdout)
    assert shown["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert shown["SITE_URL"] == "https://router.example.com"


@pytest.mark.parametrize("env, name", [
    ({"API_TOKEN_REQUESTS_PER_MINUTE": "0"}, "API_TOKEN_REQUESTS_PER_MINUTE"),
    ({"NOTIFY_RETRY_DELAYS": "5,soon"}, "NOTIFY_RETRY_DELAYS"),
    ({"NOTIFY_RETRY_DELAYS": "5,-1"}, "NOTIFY_RETRY_DELAYS"),
    ({"NOTIFY_TIMEOUT_SECONDS": "0"}, "NOTIFY_TIMEOUT_SECONDS"),
    ({"NOTIFY_CONCURRENCY": "0"}, "NOTIFY_CONCURRENCY"),
    ({"SITE_URL": "router.example.com"}, "SITE_URL"),
    ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT"),
])
def test_it_stops_start_up_on_a_bad_value_naming_it(tmp_path, env, name):
    result = start(tmp_path, **env)
    assert result.returncode != 0 and last_line(result.stderr).split(": ", 1)[-1].startswith(name)
