# make run: the dashboard on the embedded default (SQLite, filesystem broker, sandbox).
# make test: every test, on PostgreSQL + Redis and on the embedded default.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/sparkbot_dash
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
# Test processes side by side (pytest-xdist), a file each at a time: the suite mostly waits on workers,
# brokers and browsers. Each process has its own test database, Redis database and var folder
# (tests/parallel.py). TEST_PROCESSES=0 runs it in one process.
TEST_PROCESSES ?= 2
PARALLEL := $(if $(filter 0,$(TEST_PROCESSES)),,-n $(TEST_PROCESSES) --dist loadfile)
# The var dir, as settings.py finds it (SPARKBOT_DASH_VAR_DIR, else var/).
VAR_DIR := $${SPARKBOT_DASH_VAR_DIR:-var}
# Tests and benchmarks run with DEBUG off and a throwaway key; `make run` and README's commands use the
# key that `make setup` keeps under the var dir.
test test-production test-embedded bench: export SECRET_KEY ?= insecure-key-for-tests-and-benchmarks-only

.PHONY: run test test-production test-embedded setup system-packages bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Writes SECRET_KEY and AUDIT_CHAIN_KEY once under the var dir (kept on later runs).
setup: $(STAMP)
	mkdir -p "$(VAR_DIR)"
	$(PY) -m sparkbot_dash.local_secrets "$(VAR_DIR)"
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py demo_users

run: setup
	bin/run

# Debian packages the tests need: Chromium for the browser tests, docker-compose and caddy to
# validate docker-compose.yml and deploy/Caddyfile offline. Installed only when missing.
system-packages:
	@command -v chromium >/dev/null && command -v docker-compose >/dev/null && command -v caddy >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium docker-compose caddy; }

test: $(STAMP) system-packages test-production test-embedded

# Everything on PostgreSQL + Redis (DATABASE_URL and REDIS_URL may point elsewhere).
test-production: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} REDIS_URL=$${REDIS_URL:-$(REDIS_TEST_URL)} \
	  $(PY) -m pytest $(PARALLEL) $(PYTEST_ARGS)

# The flows again on the embedded default that `make run` uses: SQLite + filesystem broker.
test-embedded: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL SPARKBOT_DASH_VAR_DIR=$$(mktemp -d) \
	  $(PY) -m pytest -m embedded $(PARALLEL) $(PYTEST_ARGS)

# Redis database 13: the tests take 15 and 14 (tests/parallel.py), so a bench beside them meets none of theirs.
bench: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/13} \
	  $(PY) bench/pipeline.py

clean:
	rm -rf var
