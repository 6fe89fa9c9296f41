# Ruang: two commands for people (make demo, make test), one for figures (make bench).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test workers (pytest-xdist): the suite waits on real servers more than it computes.
TEST_WORKERS ?= 3
# Debian packages the tests and benchmarks start for real (binary -> package);
# the browser tests drive Debian's Chromium (Playwright's own download is not used);
# the HTTP benchmarks load the server with Debian's wrk (pgbench comes with PostgreSQL).
SYSTEM_BINARIES := mosquitto:mosquitto mosquitto_pub:mosquitto-clients \
	victoria-metrics:victoria-metrics socat:socat chromium:chromium wrk:wrk \
	haproxy:haproxy systemd-analyze:systemd nats-server:nats-server

.PHONY: demo test bench lint typecheck system-deps venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Installs the servers the tests use when they are missing and we are root;
# otherwise says what is missing (the test fixtures then fail in CI).
system-deps:
	@missing=""; \
	for pair in $(SYSTEM_BINARIES); do \
		bin=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || missing="$$missing $$pkg"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing (run as root or: sudo apt-get install$$missing)"; \
		fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Schemathesis gives every operation of a test the same node id, which xdist's
# per-file scheduling folds into one item: the fuzz runs in a process of its own,
# alongside the xdist workers rather than after them (it is one long item that would
# otherwise add its whole run to the suite's), and its report is printed at the end.
test: system-deps $(STAMP) lint typecheck
	@fuzz_log=$$(mktemp); \
	$(BIN)/pytest -q -p no:cacheprovider tests/cloud/test_api_fuzz.py >"$$fuzz_log" 2>&1 & \
	fuzz=$$!; \
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=25 \
		--ignore=tests/cloud/test_api_fuzz.py; main=$$?; \
	wait $$fuzz; fuzzed=$$?; \
	echo "== the API fuzz (tests/cloud/test_api_fuzz.py), run alongside:"; \
	cat "$$fuzz_log"; rm -f "$$fuzz_log"; \
	test $$main -eq 0 && test $$fuzzed -eq 0

demo: $(STAMP)
	$(BIN)/ruang demo

bench: system-deps $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
