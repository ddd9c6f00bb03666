# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := src tests migrations bench

.PHONY: install chromium run test test-quick lint format check-migrations ci clean bench bench-large

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: install
	@echo "cardcore: API docs at http://$${CARDCORE_HOST:-127.0.0.1}:$${CARDCORE_PORT:-8000}/docs"
	@echo "cardcore: get a program and an API key with:  $(BIN)/cardcore bootstrap --program Demo --json"
	$(BIN)/cardcore serve

# One pytest worker per CPU, each with a database of its own; a test file stays on one worker,
# since some share a module-wide server or data directory. The fuzz tests run after, in one
# process: under pytest-xdist, schemathesis' plugin runs one operation instead of all of them.
test: install chromium
	$(BIN)/pytest -n auto --dist loadfile -m "not fuzz"
	$(BIN)/pytest -m fuzz

# The inner loop: everything but the fuzz tests and the slow ones (processes, races, state
# machines; `slow` in pyproject.toml). `make test` still runs them all.
test-quick: install
	$(BIN)/pytest -n auto --dist loadfile -m "not fuzz and not slow"

# The browser tests drive Debian's Chromium at /usr/bin/chromium (Playwright cannot download a
# browser of its own here). As root with apt-get it is installed when missing; otherwise install it
# yourself, or point CARDCORE_TEST_CHROMIUM at another Chromium. While none is there, the browser
# tests fail and say so.
chromium:
	@if [ -z "$$CARDCORE_TEST_CHROMIUM" ] && [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium for the browser tests (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "warning: no /usr/bin/chromium; the browser tests will fail (apt-get install chromium)" >&2; \
		fi; \
	fi

lint: install
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

# Migrations must describe exactly the models: check on a scratch embedded database.
check-migrations: install
	@scratch=$$(mktemp -d) && \
	CARDCORE_DATA_DIR=$$scratch $(BIN)/cardcore migrate && \
	CARDCORE_DATA_DIR=$$scratch $(BIN)/alembic check; \
	status=$$?; rm -rf $$scratch; exit $$status

ci: test lint check-migrations

# The authorization benchmark (bench/README.md); extra options in BENCH_ARGS="--duration 10 …".
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# The same with 1,000,000 cards and 5,000,000 past transactions.
bench-large: install
	$(BIN)/python -m bench --large $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .cardcore-test
