"""The deployment files agree with the project: docker-compose.yml, deploy/Caddyfile, Dockerfile, .env.example.

docker-compose.yml is validated offline by Debian's `docker-compose config` (1.29), and
deploy/Caddyfile by Debian's `caddy adapt`; where either is missing its tests skip, except in
CI (`CI` set), where they fail.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat", "sandbox")
SERVICES = {*APP_SERVICES, "postgres", "redis", "caddy"}
# The variables docker-compose.yml requires; long enough for the settings' own checks.
COMPOSE_SECRETS = {
    "SECRET_KEY": "compose-test-secret-key-not-a-real-one",
    "AUDIT_CHAIN_KEY": "compose-test-audit-chain-key-not-a-real-one",
    "SPARKBOT_API_KEY": "compose-test-api-key-0123456789abcdef",
    "SPARKBOT_API_URL": "https://sparkbot.example.com/v1",
}
SITE_HOST = "router.example.com"
PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://sparkbot:sparkbot@postgres:5432/sparkbot",
    "REDIS_URL": "redis://redis:6379/0",
    "DEBUG": "false",
    "ALLOWED_HOSTS": SITE_HOST,
    # Caddy terminates TLS and overwrites both headers, so the app may trust them.
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "TRUST_X_FORWARDED_FOR": "true",
    **COMPOSE_SECRETS,
}
SETTINGS_SETUP = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
                  "'sparkbot_dash.settings'); django.setup()")


# --- helpers -----------------------------------------------------------------------------

def _docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path:
        return path
    if "CI" in os.environ:
        pytest.fail("docker-compose is not installed; CI must install it (`make system-packages`, "
                    "Debian package docker-compose) so that docker-compose.yml is validated.")
    pytest.skip("docker-compose is not installed (Debian package docker-compose, "
                "`make system-packages`); these tests fail instead of skipping in CI.")


def _compose_config(env_dir: Path, env: dict) -> subprocess.CompletedProcess:
    """`docker-compose config` with only `env` (no developer's .env, no shell variables)."""
    empty_env_file = env_dir / "empty.env"
    empty_env_file.touch()
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_dir), **env}
    return subprocess.run(
        [_docker_compose(), "--env-file", str(empty_env_file), "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60,
    )


def _yaml_load(text: str):
    """PyYAML from this venv if there, else from docker-compose's own Python (it needs PyYAML)."""
    try:
        import yaml
    except ImportError:
        pass
    else:
        return yaml.safe_load(text)
    first_line = Path(_docker_compose()).read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    if not first_line.startswith("#!"):
        pytest.fail("cannot parse YAML: PyYAML is not in the venv and docker-compose is not a Python script")
    interpreter = shlex.split(first_line[2:])
    result = subprocess.run(
        [*interpreter, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=text, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, f"parsing the YAML with {interpreter} failed:\n{result.stderr}"
    return json.loads(result.stdout)


def _start_settings(env: dict, var_dir: Path) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env, "SPARKBOT_DASH_VAR_DIR": str(var_dir)}
    return subprocess.run([sys.executable, "-c", SETTINGS_SETUP], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=60)


def _requirements() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def _settings_variables() -> set[str]:
    """Every variable sparkbot_dash/settings.py reads, from its source."""
    source = (ROOT / "sparkbot_dash" / "settings.py").read_text()
    helpers = re.findall(r"\benv_\w+\(\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']", source)
    direct = re.findall(r"\bos\.(?:environ\.get|environ\.setdefault|getenv)\(\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']"
                        r"|\bos\.environ\[\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']", source)
    return set(helpers) | {name for pair in direct for name in pair if name}


def _env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    values = {}
    for number, line in enumerate(lines):
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not match:
            assert not line.strip() or line.startswith("#"), f".env.example line {number + 1} is not NAME=value: {line!r}"
            continue
        name = match.group(1)
        assert name not in values, f".env.example lists {name} twice"
        assert number > 0 and lines[number - 1].startswith("# "), f".env.example: {name} has no comment line above it"
        values[name] = match.group(2)
    return values


def _commands(command) -> list[list[str]]:
    """A compose/Dockerfile command as the argv lists it runs (`sh -c "a && b"` gives two)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"]:
        argv = shlex.split(argv[2])
    commands, current = [], []
    for word in [*argv, "&&"]:
        if word == "&&":
            commands.append(current[1:] if current[:1] == ["exec"] else current)
            current = []
        else:
            current.append(word)
    return [c for c in commands if c]


def _check_command(argv: list[str]) -> str:
    """Assert that what `argv` runs exists in the project; return the program's name."""
    program, args = argv[0], argv[1:]
    if program == "python":
        if args[0] == "-m":
            if args[1] == "sparkbot_sandbox":
                from sparkbot_sandbox.__main__ import parse_args

                parse_args(args[2:])  # exits (failing the test) on an unknown option
            else:
                import importlib.util

                assert importlib.util.find_spec(f"{args[1]}.__main__"), f"no package {args[1]} with __main__"
        elif args[0] == "manage.py":
            from django.core.management import get_commands

            assert (ROOT / "manage.py").is_file()
            assert args[1] in get_commands(), f"manage.py has no command {args[1]!r}"
        else:
            pytest.fail(f"unexpected python command {argv}")
    elif program == "gunicorn":
        import importlib

        spec = next(a for a in args if not a.startswith("-"))
        module_name, _, attribute = spec.partition(":")
        assert callable(getattr(importlib.import_module(module_name), attribute or "application"))
    elif program == "celery":
        from celery import Celery
        from celery.app.utils import find_app

        app_name = args[args.index("-A") + 1]
        assert isinstance(find_app(app_name), Celery), f"-A {app_name} is not a Celery app"
        assert {"worker", "beat"} & set(args), f"celery runs neither worker nor beat: {argv}"
    else:
        pytest.fail(f"unexpected program {program!r} in {argv}")
    return program


# --- docker-compose.yml ------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose(tmp_path_factory) -> dict:
    result = _compose_config(tmp_path_factory.mktemp("compose"), {**COMPOSE_SECRETS, "SITE_HOST": SITE_HOST})
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return _yaml_load(result.stdout)


def test_it_validates_docker_compose_yml_with_every_service(compose):
    assert SERVICES <= set(compose["services"])


@pytest.mark.parametrize("missing", sorted(COMPOSE_SECRETS))
def test_it_refuses_a_compose_config_without_a_required_secret(missing, tmp_path):
    env = {name: value for name, value in COMPOSE_SECRETS.items() if name != missing}
    result = _compose_config(tmp_path, env)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_it_builds_every_app_service_from_the_dockerfile(compose):
    for name in APP_SERVICES:
        build = compose["services"][name]["build"]
        assert Path(build["context"]).resolve() == ROOT, name
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile", name
    assert (ROOT / "Dockerfile").is_file()


def test_it_gives_every_app_service_the_production_environment(compose):
    readable = _settings_variables()
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert PRODUCTION_ENV.items() <= environment.items(), name
        assert environment["ALLOWED_HOSTS"], name
        assert set(environment) <= readable, f"{name} sets variables settings.py never reads"


def test_it_starts_settings_with_the_compose_environment(compose, tmp_path):
    result = _start_settings(compose["services"]["web"]["environment"], tmp_path)
    assert result.returncode == 0, result.stderr


def test_it_starts_the_app_after_healthy_postgres_and_redis(compose):
    services = compose["services"]
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert any(v.endswith(":/var/lib/postgresql/data") or ":/var/lib/postgresql/data:" in v
               for v in services["postgres"]["volumes"])
    for name in ("web", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
    assert services["beat"]["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service, programs", [
    ("migrate", ["python"]),
    ("web", ["gunicorn"]),
    ("worker", ["celery"]),
    ("beat", ["celery"]),
    ("sandbox", ["python"]),
])
def test_it_runs_commands_that_exist_in_the_project(compose, service, programs):
    commands = _commands(compose["services"][service]["command"])
    assert [_check_command(argv) for argv in commands] == programs
    if service == "migrate":
        assert commands[0][:3] == ["python", "manage.py", "migrate"]
    if service == "web":
        assert "sparkbot_dash.wsgi:application" in commands[0]
        assert commands[0][commands[0].index("--bind") + 1] == "0.0.0.0:8000"
    if service == "sandbox":
        assert commands[0][:3] == ["python", "-m", "sparkbot_sandbox"]
        assert commands[0][commands[0].index("--host") + 1] == "0.0.0.0"


def _ports(service: dict) -> set[str]:
    """The container ports a service publishes on the host (short or long syntax)."""
    published = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published.add(str(port["target"]))
        else:
            published.add(str(port).split("/")[0].rsplit(":", 1)[-1])
    return published


def _mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes (short or long syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts[volume["target"]] = str(volume.get("source", ""))
        else:
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


def test_it_reaches_web_only_through_caddy_on_https(compose):
    services = compose["services"]
    for name, service in services.items():
        if name != "caddy":
            assert not service.get("ports"), f"{name} publishes a port; only caddy may"
    caddy = services["caddy"]
    assert caddy["image"].startswith("caddy:2")
    assert {"80", "443"} <= _ports(caddy)
    assert Path(_mounts(caddy)["/etc/caddy/Caddyfile"]).resolve() == ROOT / "deploy" / "Caddyfile"
    assert "web" in caddy["depends_on"]
    assert caddy["environment"]["SITE_HOST"] == SITE_HOST == services["web"]["environment"]["ALLOWED_HOSTS"]


def test_it_keeps_the_sandbox_out_of_production(compose):
    services = compose["services"]
    assert services["sandbox"]["profiles"] == ["sandbox"]
    for name, service in services.items():
        if name != "sandbox":
            assert "sandbox" not in service.get("depends_on", {}), f"{name} depends on the sandbox"
            assert not service.get("profiles"), f"{name} must start with a plain `docker-compose up`"
            assert "sandbox" not in str(service.get("environment", {})), f"{name} points at the sandbox"


def _caddy() -> str:
    path = shutil.which("caddy")
    if path:
        return path
    if "CI" in os.environ:
        pytest.fail("caddy is not installed; CI must install it (`make system-packages`, Debian package caddy) "
                    "so that deploy/Caddyfile is validated.")
    pytest.skip("caddy is not installed (Debian package caddy, `make system-packages`); this test fails "
                "instead of skipping in CI.")


def test_it_has_a_caddyfile_that_serves_the_site_host_and_proxies_to_web(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "SITE_HOST": SITE_HOST}
    command = [_caddy(), "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    servers = json.loads(result.stdout)["apps"]["http"]["servers"]
    routes = [route for server in servers.values() for route in server["routes"]]
    hosts = [host for route in routes for match in route.get("match", []) for host in match.get("host", [])]
    assert hosts == [SITE_HOST]
    flat = json.dumps(routes)
    assert '"handler": "reverse_proxy"' in flat and '"dial": "web:8000"' in flat


def test_it_lists_gunicorn_and_celery_in_requirements():
    assert {"gunicorn", "celery", "whitenoise", "psycopg", "dj-database-url"} <= _requirements()


# --- Dockerfile --------------------------------------------------------------------------

def _dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_it_builds_a_non_root_image_that_serves_the_wsgi_app():
    instructions = _dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    assert any("pip install -r requirements.txt" in run for run in runs)
    assert any("collectstatic --noinput" in run and "SECRET_KEY=" in run and "AUDIT_CHAIN_KEY=" in run for run in runs)
    for keyword, rest in instructions:
        if keyword == "COPY":
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    cmd = json.loads(next(rest for keyword, rest in reversed(instructions) if keyword == "CMD"))
    assert [_check_command(argv) for argv in _commands(cmd)] == ["gunicorn"]
    assert cmd[cmd.index("--bind") + 1] == "0.0.0.0:8000"
    assert any(arg.startswith("sparkbot_dash.wsgi") for arg in cmd)


# --- .env.example ------------------------------------------------------------------------

def test_it_lists_in_env_example_exactly_the_variables_settings_reads():
    read = _settings_variables()
    listed = set(_env_example())
    assert len(read) > 10, "the settings.py scan found too few variables; has its style changed?"
    assert read - listed == set(), "settings.py reads these, but .env.example does not list them"
    assert listed - read == set(), ".env.example lists these, but settings.py does not read them"


def test_it_starts_with_the_values_of_env_example(tmp_path):
    result = _start_settings(_env_example(), tmp_path)
    assert result.returncode == 0, result.stderr
