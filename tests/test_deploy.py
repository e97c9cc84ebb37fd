"""Production settings: secure by default, `check --deploy` is silent, and the security headers are sent."""

import logging
import os
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from tests.support import ROOT


def deploy_check(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """`check --deploy` in a clean environment: production (DEBUG unset) with only SECRET_KEY and ALLOWED_HOSTS,
    plus `env`."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SPARKBOT_DASH_VAR_DIR": str(tmp_path),
             "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "router.example.com", **env}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def test_it_passes_the_deployment_checklist_with_only_secret_key_and_allowed_hosts(tmp_path):
    result = deploy_check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_silences_only_the_hsts_preload_check_and_only_until_preload_is_asked_for(tmp_path):
    assert "(1 silenced)" in deploy_check(tmp_path).stdout
    preload = deploy_check(tmp_path, SECURE_HSTS_PRELOAD="true")
    assert preload.returncode == 0 and "System check identified no issues (0 silenced)." in preload.stdout


def test_it_warns_when_the_https_defaults_are_turned_off(tmp_path):
    result = deploy_check(tmp_path, SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0",
                          SESSION_COOKIE_SECURE="false", CSRF_COOKIE_SECURE="false")
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr, check


@pytest.mark.django_db
def test_it_sends_the_security_headers(client):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert policy["frame-ancestors"] == "'none'"


@pytest.mark.django_db
def test_it_uses_no_inline_script_on_its_pages(client):
    html = client.get("/accounts/login/").content.decode()
    assert "<script>" not in html and " on" + "load=" not in html
    assert '<script src="/static/django_htmx/htmx-2.min.js"' in html or "htmx-2.min" in html


@pytest.mark.django_db
def test_it_trusts_the_proxy_for_https_and_redirects_plain_http(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    client = Client()  # built after the settings change: SecurityMiddleware reads them once
    plain = client.get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


@pytest.mark.django_db
def test_it_says_how_to_trust_the_proxy_when_https_arrives_as_plain_http(settings, caplog):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None
    client = Client()  # built after the settings change: the middleware reads them once
    with caplog.at_level(logging.WARNING):
        answer = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
        client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert answer.status_code == 301  # the loop a browser would see; the log says how to end it
    hints = [record.getMessage() for record in caplog.records if "SECURE_PROXY_SSL_HEADER" in record.getMessage()]
    assert len(hints) == 1, "said once, not on every request"
    assert "SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https" in hints[0]


@pytest.mark.django_db
def test_it_says_nothing_about_the_proxy_header_when_it_is_set_or_no_proxy_speaks(settings, caplog):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    with caplog.at_level(logging.WARNING):
        Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    settings.SECURE_PROXY_SSL_HEADER = None
    with caplog.at_level(logging.WARNING):
        Client().get("/accounts/login/")
    assert "SECURE_PROXY_SSL_HEADER" not in caplog.text
